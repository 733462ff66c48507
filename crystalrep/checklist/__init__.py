"""The five-item reproducibility checklist, computed from what the store holds."""

from crystalrep.checklist.build import Checklist, ViewRecord, build_checklist, record_view

__all__ = ["Checklist", "ViewRecord", "build_checklist", "record_view"]
