"""The edge box: camera frames to posted cases (streams → detection → tracking →
zones/rules → verify → casework → delivery, driven by the daemon)."""
