"""robokit.lidar"""
