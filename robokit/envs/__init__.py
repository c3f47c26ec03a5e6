"""robokit.envs"""
