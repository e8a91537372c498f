"""The edge daemon: every camera of a site in one process, one shared detector.

`run_site(site, stop_event)` is the whole daemon as a function, `SiteRunner` the same as
an object whose parts tests and benchmarks look at (`streetvision run`, the demo and the
scenario suite use it). One module per job, each importing only those above it:

    detectors.py      the site's detectors, their routes and its crop verifier, from the config
    verifier_gate.py  the verifier's second look at each candidate before it becomes a case
    pipeline.py       one camera: tracker, rules, frame ring, clips still being recorded
    frames.py         frame batches from the cameras: live readers or offline files
    rollout.py        new model versions swapped in while the streams keep running
    summary.py        what a run did (RunSummary)
    metrics.py        the site's Prometheus metrics
    health.py         /healthz, and the HTTP server of /healthz and /metrics
    loop.py           SiteRunner: batches -> detect -> pipelines -> cases; shutdown; run_site
"""

from vision.edge.daemon.detectors import model_routes, open_site_detector, open_site_detectors, open_site_verifier
from vision.edge.daemon.loop import SiteRunner, run_site
from vision.edge.daemon.pipeline import CameraPipeline
from vision.edge.daemon.summary import RunSummary

__all__ = [
    "run_site",
    "SiteRunner",
    "RunSummary",
    "CameraPipeline",
    "open_site_detector",
    "open_site_detectors",
    "open_site_verifier",
    "model_routes",
]
