"""alsseg.seg"""
