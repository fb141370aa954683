"""The backup-history chart of the instance page: an SVG drawn on the server (the CSP allows no script).

Two panels over the same backups, oldest on the left: the dump's size above, the Job's duration below, each bar
coloured by status. A failed backup has no size: its slot carries a red cross in the size panel, so failures
stand out even when they were quick. Each bar's tooltip (``<title>``) gives date, status, size and duration.
"""

from __future__ import annotations

from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from core.templatetags.core_ui import duration_short
from instances.choices import BackupStatus

BAR_COLOURS = {
    BackupStatus.VERIFIED: "#198754",
    BackupStatus.SUCCEEDED: "#ffc107",
    BackupStatus.FAILED: "#dc3545",
    BackupStatus.EXPIRED: "#6c757d",
}
BAR_DEFAULT = "#0dcaf0"
GAP = 6  # pixels between the two panels


def _bars(values: list[float], slot: float, top: float, height: float) -> list[tuple[float, float, float]]:
    """(x, y, bar height) of each value in a panel starting at ``top``; a value of 0 gets no bar."""
    largest = max(values, default=0) or 1
    bar = max(slot * 0.7, 1)
    return [
        (
            index * slot + (slot - bar) / 2,
            top + height - max(height * value / largest, 1),
            max(height * value / largest, 1),
        )
        for index, value in enumerate(values)
    ]


def render_backup_chart(backups, *, width: int = 300, height: int = 96) -> str:
    rows = sorted(backups, key=lambda b: (b.started_at is None, b.started_at or 0, b.pk))
    if not rows:
        return ""
    panel = (height - GAP) / 2
    slot = width / len(rows)
    bar = max(slot * 0.7, 1)
    sizes = _bars([b.size or 0 for b in rows], slot, 0, panel)
    durations = _bars([b.duration.total_seconds() if b.duration else 0 for b in rows], slot, panel + GAP, panel)
    size_rects, duration_rects, failures = [], [], []
    for backup, (x, y, h), (dx, dy, dh) in zip(rows, sizes, durations, strict=True):
        taken = timezone.localtime(backup.taken_at).strftime("%Y-%m-%d %H:%M") if backup.taken_at else ""
        tip = " · ".join(
            part
            for part in (
                taken,
                str(backup.get_status_display()),
                filesizeformat(backup.size) if backup.size else "",
                duration_short(backup.duration) if backup.duration else "",
            )
            if part
        )
        colour = BAR_COLOURS.get(backup.status, BAR_DEFAULT)
        if backup.status == BackupStatus.FAILED:
            cx, cy, half = x + bar / 2, panel / 2, min(bar / 2, panel / 4)
            left, right, up, down = (f"{v:.1f}" for v in (cx - half, cx + half, cy - half, cy + half))
            failures.append((left, up, right, down, right, up, left, down, tip))
        elif backup.size:
            size_rects.append((f"{x:.1f}", f"{y:.1f}", f"{bar:.1f}", f"{h:.1f}", colour, tip))
        if backup.duration:
            duration_rects.append((f"{dx:.1f}", f"{dy:.1f}", f"{bar:.1f}", f"{dh:.1f}", colour, tip))
    rect = '<rect class="{}" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>'
    cross = (
        '<g class="backup-failed" stroke="#dc3545" stroke-width="2"><line x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}"/><title>{}</title></g>'
    )
    return format_html(
        '<svg class="backup-chart" role="img" width="{}" height="{}" viewBox="0 0 {} {}" aria-label="{}">'
        '<line class="backup-chart-axis" x1="0" y1="{}" x2="{}" y2="{}" stroke="#adb5bd"/>{}{}{}</svg>',
        width, height, width, height, _("Backup history: size above, duration below; failures crossed"),
        f"{panel + GAP / 2:.1f}", width, f"{panel + GAP / 2:.1f}",
        format_html_join("", rect, (("backup-size", *r) for r in size_rects)),
        format_html_join("", rect, (("backup-duration", *r) for r in duration_rects)),
        format_html_join("", cross, failures),
    )  # fmt: skip
