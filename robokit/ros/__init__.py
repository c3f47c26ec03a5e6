"""robokit.ros: the bridge between robokit and ROS robots.

- :mod:`robokit.ros.convert`: numpy <-> PointCloud2 / Image / JointState / Twist / PoseStamped
  (pure Python; reads rosbags, genpy and rosbridge forms), with :mod:`robokit.ros.messages`
  (plain dataclasses) and :mod:`robokit.ros.backends` (to rosbags / genpy / rosbridge JSON).
- :mod:`robokit.ros.bags`: ROS 1 / ROS 2 bags -> episodes (time-synchronised, gaps reported;
  observation-only without an action topic); episodes -> ROS 2 bags (mcap, sqlite3).
- :mod:`robokit.ros.bagfile`: opens bags recorded elsewhere (their own message definitions,
  ``roslib/Header``, an empty rosbag2 ``storage_identifier``).
- :mod:`robokit.ros.bag_clouds`: a LiDAR topic -> one KITTI ``.bin`` / PCD / ``.npz`` file per scan.
- :mod:`robokit.ros.config`: the runner and bag YAML configs (typed, errors name file and key).
- :mod:`robokit.ros.runner` + :mod:`robokit.ros.transport`: the live policy node over ROS 1
  (rospy), rosbridge (roslibpy) or ROS 2 (rclpy), every command through
  :mod:`robokit.ros.safety`.

Nothing here imports rospy, roslibpy, rosbags or rclpy at import time.
See docs/ros.md.
"""
