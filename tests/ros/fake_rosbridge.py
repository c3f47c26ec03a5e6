"""A small local stand-in for rosbridge_server (+ a robot) speaking the rosbridge v2 JSON protocol.

Why a stand-in: Debian ships no rosbridge_server (``apt-cache search rosbridge`` is empty) and
no other server can run here. This one implements the protocol operations roslibpy uses for
topics (advertise, unadvertise, publish, subscribe, unsubscribe) as a broker on 127.0.0.1, and
plays the robot: it publishes sensor_msgs/PointCloud2 as rosbridge JSON (uint8[] data as
base64, ROS 1 stamps secs/nsecs) for ``--cloud-seconds`` and records every message published
to ``--record-topic`` as a JSON line with the server's receive time.

    python tests/ros/fake_rosbridge.py --port 9090 --record cmds.jsonl --cloud-rate 20 --cloud-seconds 2
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time

import numpy as np
import txaio
from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol

SUBSCRIBERS: dict[str, set] = {}
ADVERTISED: dict[str, str] = {}


def cloud_json(points: np.ndarray, stamp: float) -> dict:
    """PointCloud2 as rosbridge sends it: x, y, z float32 little endian, point_step 12."""
    data = np.ascontiguousarray(points, dtype="<f4").tobytes()
    return {"header": {"seq": 0, "stamp": {"secs": int(stamp), "nsecs": int((stamp % 1) * 1e9)},
                       "frame_id": "lidar"},
            "height": 1, "width": len(points),
            "fields": [{"name": n, "offset": 4 * i, "datatype": 7, "count": 1} for i, n in enumerate("xyz")],
            "is_bigendian": False, "point_step": 12, "row_step": 12 * len(points),
            "data": base64.b64encode(data).decode("ascii"), "is_dense": True}


class Bridge(WebSocketServerProtocol):
    record = None
    record_topic = "/cmd_vel"

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802 - autobahn API
        message = json.loads(payload.decode("utf8"))
        op, topic = message.get("op"), message.get("topic")
        if op == "subscribe":
            SUBSCRIBERS.setdefault(topic, set()).add(self)
        elif op == "unsubscribe":
            SUBSCRIBERS.get(topic, set()).discard(self)
        elif op == "advertise":
            ADVERTISED[topic] = message.get("type", "")
        elif op == "publish":
            if topic == self.record_topic and self.record is not None:
                row = {"t": time.time(), "type": ADVERTISED.get(topic), "msg": message["msg"]}
                self.record.write(json.dumps(row) + "\n")
            broadcast(topic, message["msg"])

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:  # noqa: N802
        for clients in SUBSCRIBERS.values():
            clients.discard(self)


def broadcast(topic: str, msg: dict) -> None:
    payload = json.dumps({"op": "publish", "topic": topic, "msg": msg}).encode("utf8")
    for client in list(SUBSCRIBERS.get(topic, ())):
        client.sendMessage(payload, isBinary=False)


async def publish_clouds(topic: str, rate: float, seconds: float, points: int) -> None:
    while not SUBSCRIBERS.get(topic):
        await asyncio.sleep(0.02)
    rng = np.random.default_rng(0)
    start = time.time()
    while time.time() - start < seconds:
        broadcast(topic, cloud_json(rng.normal(size=(points, 3)) * 5.0, time.time()))
        await asyncio.sleep(1.0 / rate)
    print("clouds stopped", time.time(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--record-topic", default="/cmd_vel")
    parser.add_argument("--cloud-topic", default="/points")
    parser.add_argument("--cloud-rate", type=float, default=20.0)
    parser.add_argument("--cloud-seconds", type=float, default=2.0)
    parser.add_argument("--points", type=int, default=500)
    args = parser.parse_args()
    Bridge.record = open(args.record, "a", buffering=1)
    Bridge.record_topic = args.record_topic
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    txaio.config.loop = loop          # autobahn schedules its handshake timers through txaio
    factory = WebSocketServerFactory(f"ws://127.0.0.1:{args.port}", loop=loop)
    factory.protocol = Bridge
    loop.run_until_complete(loop.create_server(factory, "127.0.0.1", args.port))
    print("listening", args.port, flush=True)
    loop.create_task(publish_clouds(args.cloud_topic, args.cloud_rate, args.cloud_seconds, args.points))
    loop.run_forever()


if __name__ == "__main__":
    main()
