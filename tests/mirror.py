"""A stand-in for the Hugging Face mirror of CIFAR-10, built from the official arrays and served on 127.0.0.1:
parquet files of PNG images, as the mirror's, with HTTP Range requests answered (resumed downloads)."""

import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.machinery.download import SPLITS


def png(image: np.ndarray) -> bytes:
    """An RGB image as PNG bytes (OpenCV writes BGR)."""
    return cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))[1].tobytes()


def write_split(path: Path, images: np.ndarray, labels: np.ndarray):
    """A parquet file with the mirror's columns: img {bytes, path} and label."""
    cells = [{"bytes": png(image), "path": None} for image in images]
    table = pa.table({"img": pa.array(cells, pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                      "label": pa.array(labels, pa.int64())})  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def build(folder: Path, splits: dict) -> Path:
    """The mirror's two files under `folder`, from {"train": (images, labels), "test": ...}."""
    for split, (images, labels) in splits.items():
        write_split(folder / SPLITS[split], images, labels)
    return folder


class Handler(SimpleHTTPRequestHandler):
    """Static files with `Range: bytes=N-`; the first answer of each file is cut after `drop` bytes (a
    dropped connection), once, when `drop` is set; with `pace`, a byte is sent every `pace` seconds; with
    `announce`, that Content-Length is sent whatever the size. Every request is logged in `requests`."""

    def __init__(self, *args, server_state, **kwargs):
        self.state = server_state
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self.state["requests"].append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return self.send_error(404)
        data = path.read_bytes()
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", self.state["announce"] or str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.state["drop"] and path.name not in self.state["dropped"]:
            self.state["dropped"].add(path.name)
            body = body[: self.state["drop"]]  # then the connection closes: fewer bytes than announced
        try:
            if not self.state["pace"]:
                return self.wfile.write(body)
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(self.state["pace"])
        except (BrokenPipeError, ConnectionResetError):  # the client gave up
            pass

    def log_message(self, *args):
        pass


class Server:
    """Serves `folder` on 127.0.0.1 in a thread; `base` is the address to put in $CIFAR10_MIRROR."""

    def __init__(self, folder: Path, drop: int = 0, pace: float = 0.0, announce: str = ""):
        self.state = {"requests": [], "drop": drop, "dropped": set(), "pace": pace, "announce": announce}
        handler = partial(Handler, directory=str(folder), server_state=self.state)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def requests(self) -> list:
        return self.state["requests"]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
