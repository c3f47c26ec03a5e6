"""robokit.pointcloud: point clouds and what every perception flow (and RL) builds on.

Modules (each imported on its own, so ``import robokit.pointcloud`` stays light; spconv and open3d
are loaded only by the functions that need them):

* :mod:`~robokit.pointcloud.points` - cloud checks, unit-sphere normalisation, rotations, kNN
* :mod:`~robokit.pointcloud.io` - KITTI velodyne / label_2 / calib, ModelNet40 HDF5, OFF meshes, PCD/PLY
* :mod:`~robokit.pointcloud.frames` - per-frame KITTI ground truth and detections (detection + tracking)
* :mod:`~robokit.pointcloud.boxes` - 3D box geometry shared by detection and tracking
* :mod:`~robokit.pointcloud.voxelizer` - numba voxelizer (mean features, ``[b, z, y, x]`` int32 coords)
* :mod:`~robokit.pointcloud.backbones` - PointNet / sparse-conv classifiers and encoders
  (the sparse encoder is shared by the KITTI detector); :mod:`~robokit.pointcloud.spconv_patch`
  makes spconv run on CPU
* :mod:`~robokit.pointcloud.corruptions` - ModelNet-C, ModelNet40-C and KITTI scene corruptions, CE/mCE
* :mod:`~robokit.pointcloud.procedural`, :mod:`~robokit.pointcloud.kitti_crops` - data sets in the
  ModelNet40 HDF5 layout (generated shapes; labelled objects cut out of real KITTI scans)

Conventions: point arrays are ``(N, C)`` float32 with xyz first; object clouds are y-up in the
unit sphere (as ModelNet40); KITTI scans are in metres in the velodyne frame (x forward, z up).
Nothing here imports :mod:`robokit.intact`, :mod:`robokit.detection` or :mod:`robokit.tracking`.
"""
