"""alsseg.synth"""
