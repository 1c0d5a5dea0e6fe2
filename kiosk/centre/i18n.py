"""The dashboard's words in Vietnamese (the default) and English."""

from __future__ import annotations

LANGUAGES = ("vi", "en")

WORDS = {
    "title": ("Trung tâm giám sát quét mã QR", "QR check-in centre"),
    "city": ("Toàn thành phố", "Whole city"),
    "district": ("Quận/huyện", "District"),
    "ward": ("Phường/xã", "Ward"),
    "venue": ("Địa điểm", "Venue"),
    "address": ("Địa chỉ", "Address"),
    "venues_with_code": ("Địa điểm có mã", "Venues with a code"),
    "venues_unregistered": ("Chưa đăng ký", "Not registered"),
    "venues_with_kiosk": ("Có máy quét", "With a kiosk"),
    "kiosks": ("Máy quét", "Kiosks"),
    "kiosks_online": ("Máy trực tuyến", "Kiosks online"),
    "venues_with_scans": ("Địa điểm có lượt quét", "Venues with scans"),
    "scans": ("Lượt quét", "Scans"),
    "accepted": ("Hợp lệ", "Accepted"),
    "rejected": ("Từ chối", "Rejected"),
    "duplicates": ("Trùng", "Duplicates"),
    "overrides": ("Bảo vệ cho qua", "Overrides"),
    "unique_visitors": ("Người khác nhau", "Unique visitors"),
    "today": ("Hôm nay", "Today"),
    "history": ("Lượt quét 30 ngày qua", "Scans, last 30 days"),
    "coverage": ("Địa điểm có lượt quét / có mã", "Venues with scans against venues with a code"),
    "hourly": ("Lượt quét theo giờ hôm nay", "Today's scans per hour"),
    "inspection": ("Danh sách kiểm tra", "Inspection list"),
    "why": ("Vấn đề", "Problem"),
    "for": ("Bao lâu", "For how long"),
    "since": ("Từ lúc", "Since"),
    "detail": ("Chi tiết", "Detail"),
    "report": ("Báo cáo ngày (CSV)", "Daily report (CSV)"),
    "export": ("Xuất CSV", "Export CSV"),
    "login": ("Đăng nhập", "Log in"),
    "logout": ("Đăng xuất", "Log out"),
    "name": ("Tài khoản", "Account"),
    "password": ("Mật khẩu", "Password"),
    "bad_login": ("Sai tài khoản hoặc mật khẩu", "Wrong account or password"),
    "too_many": ("Quá nhiều lần thử, hãy đợi vài phút", "Too many attempts; wait a few minutes"),
    "updated": ("Cập nhật", "Updated"),
    "refused": ("Tin nhắn bị từ chối", "Refused messages"),
    "all": ("Tất cả", "All"),
    "filter": ("Lọc", "Filter"),
    "kiosk": ("Máy", "Kiosk"),
    "online": ("Trực tuyến", "Online"),
    "last_scan": ("Lượt quét cuối", "Last scan"),
    "wards": ("Các phường/xã", "Wards"),
    "venues": ("Các địa điểm", "Venues"),
    "none": ("Không có", "None"),
    "offline": ("Mất kết nối", "Offline"),
    "silent": ("Im lặng", "Silent"),
    "never-heard": ("Chưa từng gửi", "Never heard from"),
    "camera-down": ("Hỏng camera", "Camera down"),
    "display-down": ("Hỏng màn hình", "Display down"),
    "clock-unsynced": ("Sai giờ", "Clock unsynchronised"),
    "trust-stale": ("Dữ liệu tin cậy cũ", "Trust data stale"),
    "venue-code-mismatch": ("Mã địa điểm sai", "Venue code differs"),
    "unknown-venue": ("Địa điểm chưa đăng ký", "Unknown venue"),
    "implausible": ("Số liệu bất thường", "Implausible figures"),
    "no-scans-today": ("Không có lượt quét hôm nay", "No scans today"),
}


def words(lang: str) -> dict[str, str]:
    i = 1 if lang == "en" else 0
    return {k: v[i] for k, v in WORDS.items()}
