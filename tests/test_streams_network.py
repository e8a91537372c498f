"""Stream sources over real loopback servers: RTSP (GstRtspServer), a silent TCP server,
and HTTP MJPEG. Every wait is bounded; every server is stopped at the end."""

from __future__ import annotations

import logging
import time
from itertools import pairwise

import pytest

from tests.support_streams import GOP, MjpegServer, RtspServer, SilentTcpServer, wait_until
from vision.edge.streams import CameraReader, SourceError, open_source

pytestmark = pytest.mark.slow  # real RTSP/HTTP servers, watchdog timeouts

VTEST_SIZE = (768, 576)


class StatusWatch:
    """Records the online/offline sequence a reader goes through (polled from the test)."""

    def __init__(self, reader: CameraReader) -> None:
        self.reader = reader
        self.states: list[bool] = []

    def poll(self) -> bool:
        online = self.reader.status().online
        if not self.states or self.states[-1] != online:
            self.states.append(online)
        return online


def _drain(reader: CameraReader, seconds: float, times: list[float]) -> int:
    """Consume frames for `seconds`, appending their t_s; returns how many came."""
    got = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = reader.get(timeout=0.5)
        if frame is not None:
            assert frame.image.shape == (576, 768, 3)
            times.append(frame.t_s)
            got += 1
    return got


@pytest.mark.timeout(60)
def test_rtsp_reader_recovers_after_the_server_dies(rtsp_server: RtspServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vision.edge.streams")
    reader = CameraReader(
        "rtsp1",
        rtsp_server.url,
        open_timeout_s=4,
        read_timeout_s=2,
        stall_timeout_s=3,
        backoff_initial_s=0.2,
        backoff_max_s=1.0,
    )
    watch = StatusWatch(reader)
    times: list[float] = []
    reader.start()
    try:
        assert wait_until(watch.poll, 15), reader.status()
        assert _drain(reader, 1.5, times) >= 5
        status = reader.status()
        assert status.size == VTEST_SIZE and status.backend == "opencv-ffmpeg"
        t_before = times[-1]

        rtsp_server.kill()  # the camera vanishes mid-stream
        assert wait_until(lambda: not watch.poll(), 8), "reader never noticed the dead server"
        offline = reader.status()
        assert offline.state == "offline" and offline.last_error
        time.sleep(1.0)  # stay dead a moment: retries hit a closed port
        assert reader.status().open_failures >= 1

        rtsp_server.start()  # same port
        assert wait_until(watch.poll, 20), reader.status()
        assert _drain(reader, 1.5, times) >= 5
        status = reader.status()
        assert status.reconnects >= 1
        history = watch.states[watch.states.index(True) :]  # before the first frame it is offline too
        assert history[:3] == [True, False, True], watch.states
        assert times == sorted(times), "t_s must never go backwards, also across the reconnect"
        assert times[-1] > t_before + 1.0  # the outage is in stream time too (pts restarted at 0)
        assert status.delivered_frames == len(times)
        assert "offline" in caplog.text and "back online" in caplog.text
    finally:
        reader.stop()


@pytest.mark.timeout(60)
def test_rtsp_server_frozen_mid_stream_trips_the_watchdog(rtsp_server: RtspServer) -> None:
    reader = CameraReader(
        "frozen",
        rtsp_server.url,
        open_timeout_s=3,
        read_timeout_s=5,
        stall_timeout_s=2,
        backoff_initial_s=0.2,
        backoff_max_s=1.0,
        sample_fps=5,
    )
    times: list[float] = []
    reader.start()
    try:
        assert wait_until(lambda: reader.status().online, 15)
        _drain(reader, 1.0, times)
        rtsp_server.freeze()  # TCP stays open, no byte arrives: only the timeout can tell
        frozen_at = time.monotonic()
        assert wait_until(lambda: not reader.status().online, 8)
        assert time.monotonic() - frozen_at < 2 + 3  # stall_timeout_s bounds the read
        assert wait_until(lambda: reader.status().open_failures >= 1, 10)  # reopen times out too
        rtsp_server.thaw()
        assert wait_until(lambda: reader.status().reconnects >= 1, 25), reader.status()
        assert _drain(reader, 1.0, times) >= 2
        assert times == sorted(times)
    finally:
        started = time.monotonic()
        reader.stop()
        assert time.monotonic() - started < 5 + 5


@pytest.mark.timeout(60)
def test_rtsp_keyframes_only_with_pyav(rtsp_server: RtspServer) -> None:
    with open_source(rtsp_server.url, decode="keyframes", open_timeout_s=5, read_timeout_s=5) as src:
        assert src.backend == "pyav" and src.size == VTEST_SIZE
        frames = [next(src) for _ in range(3)]
        decoded = src.decoded_frames
    assert all(f.keyframe for f in frames) and decoded == 3
    gaps = [b.t_s - a.t_s for a, b in pairwise(frames)]
    assert all(abs(g - GOP / 10) < 0.15 for g in gaps), gaps  # one keyframe per GOP of 10 frames


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scheme", ["rtsp", "http"])
@pytest.mark.parametrize("decode", ["all", "keyframes"])
def test_silent_server_does_not_hang_open(silent_tcp_server: SilentTcpServer, scheme: str, decode: str) -> None:
    url = f"{scheme}://127.0.0.1:{silent_tcp_server.port}/cam"
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        open_source(url, decode=decode, open_timeout_s=2, read_timeout_s=2)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 5, elapsed
    assert silent_tcp_server.accepted >= 1
    assert url in str(info.value)
    assert "timeout" in str(info.value) or "timed out" in str(info.value)


@pytest.mark.timeout(60)
def test_silent_server_does_not_hang_reader_stop(silent_tcp_server: SilentTcpServer) -> None:
    url = f"rtsp://127.0.0.1:{silent_tcp_server.port}/cam"
    reader = CameraReader("mute", url, open_timeout_s=3, read_timeout_s=3, backoff_initial_s=0.1)
    reader.start()
    assert wait_until(lambda: silent_tcp_server.accepted >= 2, 5)  # probe + FFmpeg's connection
    started = time.monotonic()
    reader.stop(timeout=5)
    assert time.monotonic() - started < 5 + 5
    assert reader.get(timeout=1) is None
    status = reader.status()
    assert not status.online and status.delivered_frames == 0


@pytest.mark.timeout(60)
def test_mjpeg_over_http(mjpeg_server: MjpegServer) -> None:
    with open_source(mjpeg_server.url, open_timeout_s=5, read_timeout_s=5) as src:
        frames = [next(src) for _ in range(5)]
    assert all(f.image.shape == (576, 768, 3) for f in frames)
    assert [f.index for f in frames] == list(range(5))
    times = [f.t_s for f in frames]
    assert times == sorted(times)

    reader = CameraReader("mjpeg", mjpeg_server.url, open_timeout_s=5, read_timeout_s=5)
    reader.start()
    try:
        got = [reader.get(timeout=5) for _ in range(5)]
        assert all(f is not None and f.keyframe for f in got)
        times = [f.t_s for f in got if f is not None]
        assert times == sorted(times) and times[-1] - times[0] > 0.2  # ~10 fps, t_s from the wall clock
        status = reader.status()
        assert status.online and status.size == mjpeg_server.size
    finally:
        reader.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("decode", "sample_fps", "key_int"),
    [("all", 0.5, 10), ("keyframes", None, 30)],
    ids=["sampled-every-2s", "keyframes-every-3s"],
)
def test_sparse_frames_are_not_mistaken_for_a_stall(
    rtsp_available: None,
    footage_path,
    tmp_path,
    decode: str,
    sample_fps: float | None,
    key_int: int,  # type: ignore[no-untyped-def]
) -> None:
    """Frames offered less often than stall_timeout_s (sampling, long GOP) keep the camera online."""
    server = RtspServer(footage_path, tmp_path, key_int=key_int)
    server.start()
    reader = CameraReader(
        "sparse",
        server.url,
        decode=decode,
        sample_fps=sample_fps,  # type: ignore[arg-type]
        open_timeout_s=5,
        read_timeout_s=5,
        stall_timeout_s=1.2,
        backoff_initial_s=0.2,
    )
    reader.start()
    try:
        assert wait_until(lambda: reader.status().online, 15)
        times: list[float] = []
        online_all_along = True
        deadline = time.monotonic() + 6.5
        while time.monotonic() < deadline:
            frame = reader.get(timeout=0.2)
            if frame is not None:
                times.append(frame.t_s)
                assert frame.keyframe or decode == "all"
            online_all_along &= reader.status().online
        status = reader.status()
        assert online_all_along and status.reconnects == 0 and status.open_failures == 0, status
        gaps = [b - a for a, b in pairwise(times)]
        expected_gap = 1 / sample_fps if sample_fps else key_int / 10
        assert len(gaps) >= 1 and all(abs(g - expected_gap) < 0.3 for g in gaps), gaps
    finally:
        reader.stop()
        server.kill()
