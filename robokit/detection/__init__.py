"""SECOND-style sparse-convolution 3D detection on KITTI, and KITTI AP evaluation.

Modules (heavy stacks such as spconv are imported inside functions, so importing this
package stays light):

* :mod:`.kitti_eval` - AP|R40 for 2D box, BEV and 3D with the devkit's difficulty rules.
* :mod:`.dataset` - the KITTI object layout, boxes converted camera <-> LiDAR.
* :mod:`.augment` - flip, global rotation and scaling, ground-truth sampling.
* :mod:`.anchors`, :mod:`.box_coder`, :mod:`.target_assign` - anchors, residual encoding, labels.
* :mod:`.model`, :mod:`.losses`, :mod:`.postprocess` - the network, its losses, decoding + NMS.
* :mod:`.train`, :mod:`.evaluate`, :mod:`.cli` - training, evaluation (clean and corrupted), CLI.
"""
