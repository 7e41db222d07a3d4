"""The pure-Python TFRecord reader: checksums, framing, truncated and corrupted files."""

import random
import struct

import pytest
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tensorboard_masked_crc32c
from tensorboard.summary.writer.record_writer import RecordWriter

from hparams_lab.review import tfrecord


def write_records(path, records):
    with open(path, "wb") as file:
        writer = RecordWriter(file)
        for record in records:
            writer.write(record)
    return path


def some_records(count=200, seed=0):
    """Records of varied lengths, many of similar length, as event files have them."""
    rng = random.Random(seed)
    return [rng.randbytes(rng.choice([0, 1, 7, 40, 41, 42, 300, 5000])) for _ in range(count)]


def test_crc32c_matches_the_published_check_value():
    assert tfrecord.crc32c(b"123456789") == 0xE3069283  # RFC 3720, CRC-32C check value
    assert tfrecord.crc32c(b"") == 0


def test_masked_crc32c_matches_tensorboard():
    for record in some_records(50):
        assert tfrecord.masked_crc32c(record) == tensorboard_masked_crc32c(record)


def test_crc32c_many_equals_one_by_one_in_numpy_lanes_and_in_python():
    chunks = some_records(400) + [b"\0" * 13] * 70 + [b"\xff" * 64] * 70
    assert tfrecord.crc32c_many(chunks) == [tfrecord.crc32c(chunk) for chunk in chunks]
    assert tfrecord.crc32c_many([]) == []


def test_reads_back_what_tensorboard_wrote(tmp_path):
    records = some_records()
    path = write_records(tmp_path / "events.out.tfevents.1", records)
    (read,) = tfrecord.read_record_files([path])
    assert read.records == records
    assert read.warning is None


def test_several_files_come_back_in_the_order_given(tmp_path):
    first = write_records(tmp_path / "a", [b"one", b"two"])
    second = write_records(tmp_path / "b", [b"three"])
    empty = write_records(tmp_path / "c", [])
    files = tfrecord.read_record_files([second, empty, first])
    assert [f.records for f in files] == [[b"three"], [], [b"one", b"two"]]


@pytest.mark.parametrize("cut", [1, 5, 11, 12, 20, 40])
def test_truncated_last_record_is_dropped_silently(tmp_path, cut):
    records = [b"a" * 30, b"b" * 30, b"c" * 30]
    path = write_records(tmp_path / "events", records)
    data = path.read_bytes()
    last_start = len(data) - (12 + 30 + 4)
    path.write_bytes(data[:last_start + cut])
    (read,) = tfrecord.read_record_files([path])
    assert read.records == records[:2]
    assert read.warning is None


def test_bad_data_checksum_skips_that_record_and_reads_on(tmp_path):
    records = [b"first", b"second", b"third"]
    path = write_records(tmp_path / "events", records)
    data = bytearray(path.read_bytes())
    second_data = (12 + 5 + 4) + 12
    data[second_data] ^= 0xFF
    path.write_bytes(bytes(data))
    (read,) = tfrecord.read_record_files([path])
    assert read.records == [b"first", b"third"]
    assert str(path) in read.warning
    assert "1 record(s) with a bad data checksum skipped" in read.warning


def test_bad_length_stops_the_file_with_a_warning(tmp_path):
    records = [b"first", b"second", b"third"]
    path = write_records(tmp_path / "events", records)
    data = bytearray(path.read_bytes())
    data[12 + 5 + 4] ^= 0x01  # second record's length: 6 becomes 7
    path.write_bytes(bytes(data))
    (read,) = tfrecord.read_record_files([path])
    assert read.records == [b"first"]
    assert "bad length checksum at byte 21" in read.warning
    assert str(path) in read.warning


def test_garbage_file_warns_and_reads_nothing(tmp_path):
    path = tmp_path / "events.out.tfevents.garbage"
    path.write_bytes(random.Random(1).randbytes(4000))
    (read,) = tfrecord.read_record_files([path])
    assert read.records == []
    assert read.warning.startswith(f"{path}: corrupted")


def test_garbage_length_running_past_the_end_is_corruption_not_truncation(tmp_path):
    path = tmp_path / "events"
    path.write_bytes(struct.pack("<QI", 10**9, 12345) + b"x" * 20)
    (read,) = tfrecord.read_record_files([path])
    assert read.records == []
    assert "bad length checksum at byte 0" in read.warning


def test_large_records_and_many_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(tfrecord, "_BATCH_BYTES", 1000)  # force several read batches
    large = [random.Random(2).randbytes(200_000), b"small"]
    paths = [write_records(tmp_path / f"events.{i}", large if i == 1 else some_records(30, seed=i))
             for i in range(4)]
    files = tfrecord.read_record_files(paths)
    assert files[1].records == large
    assert [f.records for f in files[::2]] == [some_records(30, seed=0), some_records(30, seed=2)]
    assert all(f.warning is None for f in files)


def test_files_framed_side_by_side_in_numpy_as_one_by_one(tmp_path, monkeypatch):
    """Many small files are framed in lockstep (one record of each a numpy step): the same
    records and warnings as framing each alone, whatever damage a file has."""
    rng = random.Random(3)
    paths = []
    for index in range(60):
        path = write_records(tmp_path / f"events.{index}", some_records(rng.choice([0, 1, 5, 30]), seed=index))
        data = bytearray(path.read_bytes())
        damage = index % 6
        if damage == 1 and data:
            data[rng.randrange(len(data))] ^= 0x10  # a bad length or data checksum, or a length cut
        elif damage == 2 and data:
            data = data[:rng.randrange(len(data))]
        elif damage == 3:
            data = bytearray(rng.randbytes(rng.randrange(40)))
        elif damage == 4:
            data = bytearray(5000)  # zero-filled
        path.write_bytes(bytes(data))
        paths.append(path)
    monkeypatch.setattr(tfrecord, "_LOCKSTEP", 10**9)  # Python only
    one_by_one = [(f.path, f.records, f.warning) for f in tfrecord.read_record_files(paths)]
    for lockstep in (1, 20):  # numpy to the last record, and numpy then Python
        monkeypatch.setattr(tfrecord, "_LOCKSTEP", lockstep)
        assert [(f.path, f.records, f.warning) for f in tfrecord.read_record_files(paths)] == one_by_one
    assert sum(f[2] is not None for f in one_by_one) >= 15
