"""robokit.nets"""
