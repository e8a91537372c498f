#!/usr/bin/python3
"""A real RTSP server on loopback for the stream tests (GstRtspServer).

Run with Debian's /usr/bin/python3 (python3-gi, gir1.2-gst-rtsp-server-1.0), not
the project venv: PyGObject and the GStreamer typelibs come from apt.

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --file datasets/footage/vtest.avi

serves the file as H.264 (x264enc, zerolatency, a keyframe every --key-int
frames) on rtsp://127.0.0.1:PORT/MOUNT in real time, looping it at end of file
unless --no-loop. Without --file it serves videotestsrc. Prints one line
``READY rtsp://...`` on stdout once it listens, and runs until killed.

For benchmarks (many cameras, little server CPU):

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --file cam.mp4 --passthrough --mounts 24

serves an MP4 that already holds H.264 as is (qtdemux → h264parse → rtph264pay, no
decoding or re-encoding; --key-int does not apply) on N mount points
/cam0 … /cam{N-1}; the READY line then lists every URL, space-separated.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def launch_line(args: argparse.Namespace) -> str:
    """The media pipeline; decodebin handles any container/codec GStreamer knows."""
    if args.file:
        location = args.file.replace("\\", "\\\\").replace('"', '\\"')
        if args.passthrough:
            # Already H.264: packetise only. `dec` lets LoopingFactory loop it like decodebin.
            return (
                f'( filesrc location="{location}" ! qtdemux name=dec ! h264parse '
                "! rtph264pay name=pay0 pt=96 config-interval=1 )"
            )
        src = f'filesrc location="{location}" ! decodebin name=dec ! queue'
    else:
        src = f"videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate={args.fps}/1"
    enc = (
        f"videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast "
        f"key-int-max={args.key_int} bframes=0 ! video/x-h264,profile=baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=1"
    )
    return f"( {src} ! {enc} )"


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    """Media factory whose file pipelines seek back to 0 at end of file (segment seeks)."""

    def __init__(self, loop: bool) -> None:
        super().__init__()
        self._loop = loop

    def do_configure(self, media: GstRtspServer.RTSPMedia) -> None:  # noqa: N802 (GObject vfunc)
        if not self._loop:
            return
        pipeline = media.get_element()
        dec = pipeline.get_by_name("dec") if hasattr(pipeline, "get_by_name") else None
        if dec is None:
            return
        # A probe on decodebin's source pads turns EOS into a flushing seek to the start;
        # the timestamps downstream keep increasing because the pipeline running time does.
        dec.connect("pad-added", self._on_pad_added, pipeline)

    def _on_pad_added(self, _dec: Gst.Element, pad: Gst.Pad, pipeline: Gst.Element) -> None:
        pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, self._on_event, pipeline)

    @staticmethod
    def _on_event(_pad: Gst.Pad, info: Gst.PadProbeInfo, pipeline: Gst.Element) -> Gst.PadProbeReturn:
        event = info.get_event()
        if event is not None and event.type == Gst.EventType.EOS:
            GLib.idle_add(
                lambda: pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0) and False
            )
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mount", default="/cam")
    parser.add_argument("--file", help="video file to serve (default: a test pattern)")
    parser.add_argument("--key-int", type=int, default=10, help="frames between keyframes")
    parser.add_argument("--fps", type=int, default=10, help="test-pattern frame rate")
    parser.add_argument("--no-loop", action="store_true", help="end the stream at end of file")
    parser.add_argument(
        "--passthrough", action="store_true", help="--file is an MP4 with H.264: serve it without re-encoding"
    )
    parser.add_argument("--mounts", type=int, default=1, help="serve N mount points MOUNT0..MOUNT{N-1}")
    args = parser.parse_args()
    if args.passthrough and not args.file:
        parser.error("--passthrough needs --file (an MP4 holding H.264)")
    if args.mounts < 1:
        parser.error("--mounts must be at least 1")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = [args.mount] if args.mounts == 1 else [f"{args.mount}{i}" for i in range(args.mounts)]
    for mount in mounts:
        factory = LoopingFactory(loop=not args.no_loop)
        factory.set_launch(launch_line(args))
        factory.set_shared(False)  # every client starts its own pipeline at the file's start
        server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on {args.host}:{args.port}", flush=True)
        return 1

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("READY " + " ".join(f"rtsp://{args.host}:{args.port}{m}" for m in mounts), flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
