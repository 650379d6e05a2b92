"""alsseg.report"""
