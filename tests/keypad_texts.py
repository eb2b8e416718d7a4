"""What the 12345 keypad says, as the tests listen for it (the zh_Hans catalog's voice.* texts, in pieces): one
list for every road a keypad call takes (Twilio's TwiML, the JSON dialog, FreeSWITCH's documents, Asterisk)."""

from __future__ import annotations

from bot.policy.rules import DEFAULT_REASONS

GRADE_MENU = ("非常满意请按1", "满意请按2", "基本满意请按3", "不满意请按4", "非常不满意请按5", "重听请按0")
REASON_CODES = list(DEFAULT_REASONS)
REASON_LABELS = list(DEFAULT_REASONS.values())
THANKS = "感谢您的评价"
THANKS_BAD = "已记录您的评价"
GOODBYE = "感谢您的来电，再见"
NO_INPUT = "没有收到您的按键"
INVALID = "您的按键有误"
RATED = "已经评价过了"
