"""robokit.data"""
