"""robokit.lidar: point-cloud perception core and INTACT.

Modules (each imported on its own, so ``import robokit.lidar`` stays light; spconv and open3d
are loaded only by the functions that need them):

* :mod:`~robokit.lidar.io` - KITTI velodyne / label_2 / calib, ModelNet40 HDF5, OFF meshes, PCD/PLY
* :mod:`~robokit.lidar.procedural` - the procedural shapes set in ModelNet40 HDF5 layout
* :mod:`~robokit.lidar.kitti_crops` - labelled objects cut out of real KITTI scans
* :mod:`~robokit.lidar.voxelizer` - numba voxelizer (mean features, ``[b, z, y, x]`` int32 coords)
* :mod:`~robokit.lidar.corruptions` - ModelNet-C, ModelNet40-C and KITTI scene corruptions, CE/mCE
* :mod:`~robokit.lidar.boxes` - 3D box geometry shared by detection and tracking
* backbones, saliency, curriculum, robustness CLI - INTACT (see docs/intact.md)

Conventions: point arrays are ``(N, C)`` float32 with xyz first; object clouds are y-up in the
unit sphere (as ModelNet40); KITTI scans are in metres in the velodyne frame (x forward, z up).
"""
