"""robokit.ros"""
