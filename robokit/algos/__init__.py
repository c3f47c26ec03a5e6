"""robokit.algos"""
