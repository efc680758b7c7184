"""The report's words in Vietnamese and English, and numbers and times written the way each reader expects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

LANGS = ("vi", "en")

TEXT: dict[str, dict[str, str]] = {
    "title": {"vi": "Báo cáo tổng hợp sau sự kiện truyền trực tiếp", "en": "Post-event livestream report"},
    "download": {"vi": "Tải về", "en": "Download"},
    "in_progress": {"vi": "Sự kiện đang diễn ra — số liệu tạm tính đến", "en": "Event in progress — figures as of"},
    "time": {"vi": "Thời gian", "en": "Time"},
    "duration": {"vi": "Thời lượng", "en": "Duration"},
    "timezone": {"vi": "Múi giờ", "en": "Time zone"},
    "key_figures": {"vi": "Số liệu chính", "en": "Key figures"},
    "views": {"vi": "Lượt xem", "en": "Views"},
    "viewers": {"vi": "Người xem", "en": "Viewers"},
    "likes": {"vi": "Lượt thích", "en": "Likes"},
    "peak_concurrent": {"vi": "Người xem đồng thời cao nhất", "en": "Peak concurrent viewers"},
    "at": {"vi": "lúc", "en": "at"},
    "mean_concurrent": {"vi": "Người xem đồng thời trung bình", "en": "Mean concurrent viewers"},
    "comments": {"vi": "Bình luận", "en": "Comments"},
    "unique_authors": {"vi": "Người bình luận", "en": "Unique commenters"},
    "questions_answered": {"vi": "Câu hỏi được trả lời", "en": "Questions answered"},
    "stream_uptime": {"vi": "Thời gian phát ổn định", "en": "Stream time live"},
    "viewers_section": {"vi": "1. Người xem theo nền tảng", "en": "1. Viewers by platform"},
    "platform": {"vi": "Nền tảng", "en": "Platform"},
    "channel": {"vi": "Kênh", "en": "Channel"},
    "peak": {"vi": "Cao nhất", "en": "Peak"},
    "peak_time": {"vi": "Thời điểm", "en": "Peak time"},
    "mean": {"vi": "Trung bình", "en": "Mean"},
    "total": {"vi": "Tổng cộng", "en": "Total"},
    "manual": {"vi": "nhập tay", "en": "manual"},
    "manual_note": {"vi": "Số liệu nhập tay do kỹ thuật viên ghi nhận từ nền tảng (không có giao diện lập trình).",
                    "en": "Figures entered by hand by the operator (the platform offers no API)."},
    "viewers_chart": {"vi": "Người xem đồng thời theo phút", "en": "Concurrent viewers per minute"},
    "comments_section": {"vi": "2. Bình luận", "en": "2. Comments"},
    "paid": {"vi": "Tin nhắn trả phí", "en": "Paid messages"},
    "hidden": {"vi": "Đã ẩn", "en": "Hidden"},
    "comments_chart": {"vi": "Bình luận theo phút", "en": "Comments per minute"},
    "amount": {"vi": "Số tiền", "en": "Amount"},
    "author": {"vi": "Người gửi", "en": "Author"},
    "message": {"vi": "Nội dung", "en": "Message"},
    "questions_section": {"vi": "3. Câu hỏi của khán giả", "en": "3. Audience questions"},
    "received": {"vi": "Tiếp nhận", "en": "Received"},
    "approved": {"vi": "Được duyệt", "en": "Approved"},
    "forwarded": {"vi": "Chuyển tới chủ tọa", "en": "Forwarded"},
    "on_air": {"vi": "Lên sóng", "en": "On air"},
    "answered": {"vi": "Đã trả lời", "en": "Answered"},
    "dismissed": {"vi": "Loại bỏ", "en": "Dismissed"},
    "merged": {"vi": "Gộp trùng", "en": "Merged duplicates"},
    "median_answer": {"vi": "Thời gian chờ trả lời (trung vị)", "en": "Median time from asked to answered"},
    "answered_list": {"vi": "Các câu hỏi đã được trả lời", "en": "Questions answered"},
    "question": {"vi": "Câu hỏi", "en": "Question"},
    "asker": {"vi": "Người hỏi", "en": "Asked by"},
    "answered_by": {"vi": "Người trả lời", "en": "Answered by"},
    "waited": {"vi": "Chờ", "en": "Waited"},
    "moderation": {"vi": "Công tác biên tập", "en": "Moderation"},
    "actions": {"vi": "thao tác", "en": "actions"},
    "health_section": {"vi": "4. Chất lượng luồng phát", "en": "4. Stream health"},
    "destination": {"vi": "Điểm phát", "en": "Destination"},
    "time_live": {"vi": "Thời gian phát", "en": "Time live"},
    "share_live": {"vi": "Tỷ lệ thời gian", "en": "Share of event"},
    "reconnects": {"vi": "Kết nối lại", "en": "Reconnects"},
    "outages": {"vi": "Sự cố", "en": "Outages"},
    "bitrate": {"vi": "Tốc độ bit TB", "en": "Mean bitrate"},
    "platform_view": {"vi": "Nền tảng nhận được", "en": "What the platform received"},
    "platform_good": {"vi": "Tốt", "en": "Good"},
    "platform_bad": {"vi": "Không nhận/xấu", "en": "Nothing or bad"},
    "platform_issues": {"vi": "Vấn đề nền tảng nêu", "en": "Issues the platform named"},
    "timeline_chart": {"vi": "Diễn biến trạng thái phát", "en": "Stream state timeline"},
    "bitrate_chart": {"vi": "Tốc độ bit (kbit/s) theo phút", "en": "Bitrate (kbit/s) per minute"},
    "incidents": {"vi": "Sự cố ghi nhận", "en": "Incidents"},
    "no_incidents": {"vi": "Không có sự cố.", "en": "No incidents."},
    "what": {"vi": "Sự việc", "en": "What"},
    "from": {"vi": "Từ", "en": "From"},
    "until": {"vi": "Đến", "en": "Until"},
    "recovered": {"vi": "đã khôi phục", "en": "recovered"},
    "not_recovered": {"vi": "chưa khôi phục", "en": "not recovered"},
    "kind_destination": {"vi": "Điểm phát gián đoạn", "en": "Destination down"},
    "kind_ingest": {"vi": "Mất tín hiệu đầu vào", "en": "Ingest lost"},
    "kind_ingest_backup": {"vi": "Phát từ đầu vào dự phòng", "en": "On air from the backup input"},
    "kind_source": {"vi": "Lỗi lấy bình luận", "en": "Audience source failed"},
    "ingest": {"vi": "Tín hiệu đầu vào", "en": "Ingest"},
    "ingest_lost": {"vi": "Mất tín hiệu đầu vào", "en": "Ingest lost"},
    "times": {"vi": "lần", "en": "times"},
    "state_live": {"vi": "đang phát", "en": "live"},
    "state_starting": {"vi": "đang kết nối", "en": "starting"},
    "state_backoff": {"vi": "chờ kết nối lại", "en": "backoff"},
    "state_failed": {"vi": "lỗi", "en": "failed"},
    "state_stopped": {"vi": "dừng", "en": "stopped"},
    "state_lost": {"vi": "mất tín hiệu", "en": "lost"},
    "state_waiting": {"vi": "chờ tín hiệu", "en": "waiting"},
    "no_data": {"vi": "Không có dữ liệu.", "en": "No data."},
    "definitions": {"vi": "Cách tính", "en": "How the figures are computed"},
    "def_peak": {"vi": "Đỉnh tổng là đỉnh của chuỗi cộng dồn (tại mỗi thời điểm, số liệu mới nhất của mọi nền "
                       "tảng), không phải tổng các đỉnh.",
                 "en": "The total's peak is the peak of the summed series (at each moment, every platform's "
                       "latest figure), not the sum of the peaks."},
    "def_mean": {"vi": "Trung bình có trọng số theo thời gian, chỉ tính khi nền tảng còn báo số liệu.",
                 "en": "Means are time-weighted over the time each platform was reporting."},
    "def_comments": {"vi": "Bình luận gồm tin nhắn thường và trả phí, kể cả tin đã ẩn; người bình luận được "
                           "đếm không trùng trên mỗi nền tảng.",
                     "en": "Comments are ordinary and paid messages, hidden ones included; commenters are "
                           "counted once per platform."},
    "def_reconnect": {"vi": "Kết nối lại: điểm phát trở lại trạng thái phát sau khi bị gián đoạn (không do "
                            "kỹ thuật viên dừng).",
                      "en": "A reconnect is a destination going live again after an interruption it did not "
                            "get from the operator."},
    "prepared_by": {"vi": "NGƯỜI LẬP BÁO CÁO", "en": "PREPARED BY"},
    "approved_by": {"vi": "THỦ TRƯỞNG ĐƠN VỊ", "en": "APPROVED BY"},
    "sign_hint": {"vi": "(Ký, ghi rõ họ tên)", "en": "(Signature and full name)"},
    "place_date": {"vi": "…………, ngày …… tháng …… năm ……", "en": "Place and date: ……………………………"},
    "generated": {"vi": "Báo cáo tạo tự động bởi streamctl lúc", "en": "Generated by streamctl at"},
    "page": {"vi": "Trang", "en": "Page"},
    "minute": {"vi": "Phút", "en": "Minute"},
    "local_time": {"vi": "Giờ", "en": "Local time"},
    "event": {"vi": "Sự kiện", "en": "Event"},
    "started": {"vi": "Bắt đầu", "en": "Started"},
    "ended": {"vi": "Kết thúc", "en": "Ended"},
    "name": {"vi": "Tên", "en": "Name"},
    "value": {"vi": "Giá trị", "en": "Value"},
    "figure": {"vi": "Chỉ tiêu", "en": "Figure"},
    "error": {"vi": "Lỗi", "en": "Error"},
    "seconds": {"vi": "giây", "en": "seconds"},
}

_DURATION_UNITS = {"vi": ("giờ", "phút", "giây"), "en": ("h", "min", "s")}


@dataclass(frozen=True)
class Words:
    """One reader's language and the event's time zone: labels, numbers, durations and local times."""

    lang: str
    timezone: str

    def __call__(self, key: str) -> str:
        return TEXT[key][self.lang]

    def num(self, value: float | None, digits: int = 0) -> str:
        """628000 -> "628.000" (vi) or "628,000" (en); None -> "—"."""
        if value is None:
            return "—"
        text = f"{value:,.{digits}f}"
        if self.lang == "vi":
            text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return text

    def pct(self, ratio: float | None) -> str:
        return "—" if ratio is None else self.num(ratio * 100, 1) + "%"

    def duration(self, seconds: float | None) -> str:
        """3725 -> "1 h 02 min" / "1 giờ 02 phút"; under a minute in seconds."""
        if seconds is None:
            return "—"
        h_unit, m_unit, s_unit = _DURATION_UNITS[self.lang]
        total = int(round(seconds))
        if total < 60:
            return f"{total} {s_unit}"
        hours, minutes = divmod(total // 60, 60)
        if hours:
            return f"{hours} {h_unit} {minutes:02d} {m_unit}"
        return f"{minutes} {m_unit} {total % 60:02d} {s_unit}"

    def local(self, value: str | float | None) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            moment = datetime.fromtimestamp(value, ZoneInfo("UTC"))
        return moment.astimezone(ZoneInfo(self.timezone))

    def clock(self, value: str | float | None, seconds: bool = False) -> str:
        """Local time of day, e.g. "20:41"."""
        moment = self.local(value)
        if moment is None:
            return "—"
        return moment.strftime("%H:%M:%S" if seconds else "%H:%M")

    def date(self, value: str | float | None) -> str:
        moment = self.local(value)
        if moment is None:
            return "—"
        if self.lang == "vi":
            return f"ngày {moment.day:02d}/{moment.month:02d}/{moment.year}"
        return moment.strftime("%d %B %Y").lstrip("0")

    def stamp(self, value: str | float | None) -> str:
        """Local date and time, e.g. "30/10/2023 20:41"."""
        moment = self.local(value)
        return "—" if moment is None else moment.strftime("%d/%m/%Y %H:%M")

    def state(self, state: str) -> str:
        return TEXT.get(f"state_{state}", {}).get(self.lang, state)
