"""Open ROS 1 and ROS 2 bags recorded elsewhere, with the message definitions they carry.

:class:`BagFile` wraps ``rosbags``' ROS 1 and ROS 2 readers with what bags in the wild need
beyond ``rosbags.highlevel.AnyReader``:

- **The bag's own definitions win.** The typestore starts from ROS 1 Noetic's (ROS 1 bags) or
  ROS 2 Humble's (ROS 2 bags) standard types, then registers every type defined in the bag
  (ROS 1 connection headers, ROS 2 MCAP ``ros2msg``/``ros2idl`` schemas) over them, so custom
  message types and older versions of standard types decode as recorded.
- **Old ROS 1 definitions.** Bags recorded before ROS Groovy (and by tools that copied their
  definitions) name the header's type ``roslib/Header``; field declarations say ``Header``,
  which ROS 1 resolves to ``std_msgs/Header``. The two definitions are identical on the wire,
  so ``roslib/Header`` is read as ``std_msgs/Header`` (AnyReader fails with "Type
  'std_msgs/msg/Header' is unknown").
- **Empty ``storage_identifier``.** ``metadata.yaml`` files written by libmcap-based tools leave
  it empty; the storage is then chosen from the data files' suffix (``.mcap`` or ``.db3``).

Reading errors (missing, truncated, corrupt bags, undecodable definitions) raise
:class:`BagError` naming the bag.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class BagError(ValueError):
    """A bag that cannot be read (missing, truncated, corrupt); the text names the bag."""


_ROSLIB_HEADER = re.compile(r"\broslib/Header\b")


def modernise_ros1_msgdef(text: str) -> str:
    """A ROS 1 message definition with ``roslib/Header`` (pre-Groovy bags) renamed ``std_msgs/Header``."""
    return _ROSLIB_HEADER.sub("std_msgs/Header", text)


def _storage_by_suffix(path: Path) -> Any:
    """The rosbag2 storage reader for one data file, chosen by its suffix (empty storage_identifier)."""
    from rosbags.rosbag2 import ReaderError
    from rosbags.rosbag2.storage_mcap import McapReader
    from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader

    readers = {".mcap": McapReader, ".db3": Sqlite3Reader}
    if Path(path).suffix not in readers:
        raise ReaderError(f"metadata.yaml has an empty storage_identifier and data file {Path(path).name} "
                          "is neither .mcap nor .db3")
    return readers[Path(path).suffix](path)


def _rosbag2_reader_class() -> type:
    """rosbags' ROS 2 reader (a bag folder, or a bare .mcap / .db3 file) whose folder reader also
    takes metadata with an empty ``storage_identifier``."""
    from rosbags.rosbag2 import Reader
    from rosbags.rosbag2.reader import DirectoryReader

    class FolderReader(DirectoryReader):
        STORAGE_PLUGINS = {**DirectoryReader.STORAGE_PLUGINS, "": _storage_by_suffix}

    class Rosbag2Reader(Reader):
        STORAGE_PLUGINS = {**Reader.STORAGE_PLUGINS, "dir": FolderReader}

    return Rosbag2Reader


def _bag_types(connections: Sequence[Any], ros1: bool) -> dict[str, Any]:
    """Parse trees of every type defined inside the bag (ROS 1 msgdefs, ROS 2 MCAP schemas)."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import get_types_from_idl, get_types_from_msg

    types: dict[str, Any] = {}
    separator = "=" * 80 + "\n"
    for connection in connections:
        msgdef = connection.msgdef
        if msgdef.format == MessageDefinitionFormat.MSG:
            text = modernise_ros1_msgdef(msgdef.data) if ros1 else msgdef.data
            types.update(get_types_from_msg(text, connection.msgtype))
        elif msgdef.format == MessageDefinitionFormat.IDL:
            parts = msgdef.data.split(separator)[1:] if msgdef.data.startswith(f"{separator}IDL: ") \
                else [f"IDL: \n{msgdef.data}"]
            for part in parts:
                types.update(get_types_from_idl(part.split("\n", 1)[1]))
    return types


def build_typestore(connections: Sequence[Any], ros1: bool) -> Any:
    """Standard types (Noetic or Humble) overlaid with the types the bag defines itself."""
    from rosbags.typesys import Stores, TypesysError, get_typestore

    standard = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    own = _bag_types(connections, ros1)
    try:     # the common case: the bag's definitions agree with the standard ones, or add to them
        standard.register(own)
        return standard
    except TypesysError:   # the bag redefines a standard type: its own definition wins
        store = get_typestore(Stores.EMPTY)
        store.register({**standard.fielddefs, **own})
        return store


class BagFile:
    """A ROS 1 ``.bag`` file or a ROS 2 bag folder, opened with the typestore it needs.

    Use as a context manager::

        with BagFile(path) as bag:
            bag.topics()                                   # {topic: ROS 2 type name}
            for topic, log_ns, msg in bag.messages(["/velodyne_points"]): ...
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.ros1 = self.path.suffix == ".bag"
        self._reader: Any = None
        self.typestore: Any = None

    def __enter__(self) -> BagFile:
        if not self.path.exists():
            raise BagError(f"{self.path}: no such bag")
        with _translate_errors(self.path):
            if self.ros1:
                from rosbags.rosbag1 import Reader
                self._reader = Reader(self.path)
            else:
                self._reader = _rosbag2_reader_class()(self.path)
            self._reader.open()
            try:
                self.typestore = build_typestore(self._reader.connections, self.ros1)
            except BaseException:
                self._reader.close()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.close()

    def topics(self) -> dict[str, str]:
        """topic -> message type (ROS 2 spelling, ``pkg/msg/Name``) of every topic in the bag."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    def message_count(self, topics: Sequence[str]) -> int:
        return sum(c.msgcount for c in self._reader.connections if c.topic in topics)

    def messages(self, topics: Sequence[str]) -> Iterator[tuple[str, int, Any]]:
        """(topic, log time ns, decoded message) for the messages on ``topics``, in log-time order."""
        connections = [c for c in self._reader.connections if c.topic in topics]
        deserialize = self.typestore.deserialize_ros1 if self.ros1 else self.typestore.deserialize_cdr
        with _translate_errors(self.path):
            for connection, log_ns, data in self._reader.messages(connections=connections):
                yield connection.topic, log_ns, deserialize(data, connection.msgtype)


@contextmanager
def _translate_errors(path: Path) -> Iterator[None]:
    """Turn rosbags' reader, typesys and serde errors into a BagError naming the bag."""
    import struct

    from rosbags.rosbag1 import ReaderError as Ros1ReaderError
    from rosbags.rosbag2 import ReaderError as Ros2ReaderError
    from rosbags.serde import SerdeError
    from rosbags.typesys import TypesysError

    try:
        yield
    except (Ros1ReaderError, Ros2ReaderError, SerdeError, TypesysError, EOFError, struct.error) as err:
        raise BagError(f"{path}: cannot read bag: {err}") from err
