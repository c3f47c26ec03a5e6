"""robokit.losses"""
