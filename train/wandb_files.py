"""Read an offline W&B run file (`run-<id>.wandb`) back into Python values.

wandb 0.31.0 ships no Python reader for its run files. The file is a LevelDB
log: a 7-byte header (`:W&B`, a 2-byte magic, a version byte), then 32 KiB
blocks of chunks, each with a 7-byte header (CRC32, little-endian length,
type 1 full / 2 first / 3 middle / 4 last). Each reassembled record is a
`wandb.proto.wandb_internal_pb2.Record`.
"""

import json
import struct
import time
from pathlib import Path

BLOCK_SIZE = 32768
HEADER_SIZE = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def iter_records(path: Path):
    """Yield every protobuf `Record` of a `.wandb` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file (header {data[:4]!r}).")

    position = HEADER_SIZE
    pending = b""
    while position + HEADER_SIZE <= len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        if left_in_block < HEADER_SIZE:
            position += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER_SIZE])
        position += HEADER_SIZE
        chunk = data[position : position + length]
        position += length

        if kind == FULL:
            payload = chunk
        elif kind == FIRST:
            pending = chunk
            continue
        elif kind == MIDDLE:
            pending += chunk
            continue
        elif kind == LAST:
            payload = pending + chunk
            pending = b""
        else:
            continue

        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        yield record


def _item_key(item) -> str:
    return item.key or "/".join(item.nested_key)


def read_run(path: Path) -> dict:
    """Return `{"run": ..., "config": {...}, "history": [...]}` of one run file.

    `history` contains one dict per `wandb.log` call, with `_step` among the keys.
    """
    run_info: dict = {}
    config: dict = {}
    history: list[dict] = []
    for record in iter_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_info = {
                "id": record.run.run_id,
                "project": record.run.project,
                "group": record.run.run_group,
                "name": record.run.display_name,
            }
            for item in record.run.config.update:
                config[_item_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                config[_item_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            history.append(
                {_item_key(i): json.loads(i.value_json) for i in record.history.item}
            )
    return {"run": run_info, "config": config, "history": history}


def find_run_files(folder: Path) -> list[Path]:
    """Return every `.wandb` run file under `folder`, oldest first."""
    return sorted(Path(folder).glob("**/run-*.wandb"), key=lambda p: p.stat().st_mtime)


def has_exit_record(path: Path) -> bool:
    """Return whether the run file at `path` ends its run with an `exit` record."""
    if not Path(path).exists():
        return False
    return any(r.WhichOneof("record_type") == "exit" for r in iter_records(path))


def wait_for_exit_record(path: Path, timeout: float = 60.0) -> bool:
    """Poll until the run file contains its `exit` record; return False on timeout.

    wandb 0.31.0's `run.finish()` in offline mode can return before its
    background process has written the last records, which was seen on a
    loaded 2-core machine.
    """
    deadline = time.monotonic() + timeout
    while True:
        if has_exit_record(path):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
