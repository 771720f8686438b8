"""Minimal TensorBoard event-file writer for scalars (no tensorboard/protobuf dependency).

An event file is a sequence of TFRecords: [uint64 length][uint32 masked crc32c(length)]
[data][uint32 masked crc32c(data)], each holding one serialized `Event` protobuf:
  Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
  Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
Files are named events.out.tfevents.<unix time>.<host>, as TensorBoard expects.
"""
import os
import socket
import struct
import time


def _crc32c_table():
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 and add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def encode_event(wall_time, step=None, file_version=None, scalars=None):
    """Serialize an Event protobuf; scalars: {tag: float} become one Summary."""
    out = bytearray(_varint((1 << 3) | 1) + struct.pack('<d', wall_time))
    if step is not None:
        out += _varint((2 << 3) | 0) + _varint(int(step))
    if file_version is not None:
        out += _field_bytes(3, file_version.encode())
    if scalars:
        summary = b''.join(_field_bytes(1, _field_bytes(1, tag.encode()) + _varint((2 << 3) | 5)
                                        + struct.pack('<f', float(value)))
                           for tag, value in scalars.items())
        out += _field_bytes(5, summary)
    return bytes(out)


def encode_record(data: bytes) -> bytes:
    """One TFRecord around `data`."""
    header = struct.pack('<Q', len(data))
    return header + struct.pack('<I', masked_crc(header)) + data + struct.pack('<I', masked_crc(data))


class ScalarWriter:
    """Append scalar summaries to a new event file in `log_dir` (flushed after every write)."""

    def __init__(self, log_dir):
        os.makedirs(log_dir, exist_ok=True)
        now = time.time()
        self.path = os.path.join(log_dir, f'events.out.tfevents.{int(now)}.{socket.gethostname()}')
        self._file = open(self.path, 'ab')
        self._write(encode_event(now, file_version='brain.Event:2'))

    def _write(self, event):
        self._file.write(encode_record(event))
        self._file.flush()

    def add_scalars(self, scalars, step, wall_time=None):
        """scalars: {tag: float} at global step `step` (e.g. kimg)."""
        self._write(encode_event(wall_time or time.time(), step=step, scalars=scalars))

    def close(self):
        self._file.close()


def read_records(path):
    """Yield the data of each TFRecord in `path`, checking both CRCs (for tests and tools)."""
    with open(path, 'rb') as f:
        while True:
            header = f.read(8)
            if not header:
                return
            if len(header) < 8:
                raise ValueError(f'{path}: truncated record header')
            (length,) = struct.unpack('<Q', header)
            (hcrc,) = struct.unpack('<I', f.read(4))
            if hcrc != masked_crc(header):
                raise ValueError(f'{path}: bad length CRC')
            data = f.read(length)
            (dcrc,) = struct.unpack('<I', f.read(4))
            if dcrc != masked_crc(data):
                raise ValueError(f'{path}: bad data CRC')
            yield data
