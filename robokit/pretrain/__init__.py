"""robokit.pretrain: representation pretraining for multi-task imitation from pixels.

Demonstrations of the hidden-context envs (:mod:`robokit.pretrain.demos`). Importing this
package imports no torch and no MuJoCo; each module imports what it needs when used.
"""
