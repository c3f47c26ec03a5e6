"""robokit.trainers"""
