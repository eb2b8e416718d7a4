"""The catalog keys of everything the dialogs say.

The core never holds text: it names a message by key and `bot/` renders it from the Babel catalog
of the person's language (`locales/<locale>/LC_MESSAGES/messages.po`, source `zh_Hans`). A test
checks that every key here has a translation in every catalog, with the same placeholders.
"""

from __future__ import annotations

# The 24-hour reminder. Params: item, agency, completed_at (datetime), link.
REMINDER = "rating.reminder"
# The menu for a person who writes without an open conversation. Params: item, completed_at, link, count.
MENU = "rating.menu"
# A grade we could not read. Params: item.
REPROMPT = "rating.reprompt"
# After two re-prompts: the rating page instead. Params: link.
USE_LINK = "rating.use_link"
# A good grade stored.
THANKS = "rating.thanks"
# A bad grade: which reasons? Params: reasons (tuple of (number, code)).
ASK_REASONS = "rating.ask_reasons"
# Reason numbers we could not read. Params: reasons.
REPROMPT_REASONS = "rating.reprompt_reasons"
# Only 其他 chosen: the person must say what went wrong.
ASK_TEXT = "rating.ask_text"
# A bad rating stored; a sentence may follow.
THANKS_BAD = "rating.thanks_bad"
# The sentence stored.
THANKS_TEXT = "rating.thanks_text"
# Opt-out confirmed.
OPTED_OUT = "rating.opted_out"
# A number we know, with nothing to rate.
NOTHING_TO_RATE = "rating.nothing_to_rate"
# A number we do not know.
UNKNOWN_SENDER = "rating.unknown_sender"
# One line of a reasons list. Params: number, label.
REASON_LINE = "rating.reason_line"
# The person's unrated cases (the keyword 评价). Params: count, cases (tuple of CaseView); the first is open.
LIST = "rating.list"
# One line of that list. Params: number, item, completed_at.
CASE_LINE = "rating.case_line"
# A new follower of the official account.
GREETING = "rating.greeting"
# A picture, a voice message WeChat did not recognise, a location, a link: only words can be read.
TEXT_ONLY = "rating.text_only"
# The grade question again, without an apology (after TEXT_ONLY). Params: item, link.
GRADE_MENU = "rating.grade_menu"
# What the service is and which words it understands (Twilio's HELP, or 帮助). No params.
HELP = "rating.help"

# The 12345 keypad (dialogs/keypad.py): spoken with <Say>, so written to be heard.
VOICE_WELCOME = "voice.welcome"
VOICE_GRADE_MENU = "voice.grade_menu"
# Params: key_reasons (tuple of (key, code)), one VOICE_REASON_LINE each.
VOICE_REASONS_MENU = "voice.reasons_menu"
VOICE_REASON_LINE = "voice.reason_line"
VOICE_NO_INPUT = "voice.no_input"
VOICE_INVALID = "voice.invalid"
VOICE_THANKS = "voice.thanks"
VOICE_THANKS_BAD = "voice.thanks_bad"
VOICE_GOODBYE = "voice.goodbye"
VOICE_RATED = "voice.rated"  # the case has its rating (and follow-up) already
VOICE_BARRED = "voice.barred"  # the rater is barred from rating (blacklist)
# The automated callback call. Params of the intro: item.
VOICE_CALLBACK_INTRO = "voice.callback_intro"
VOICE_CALLBACK_MENU = "voice.callback_menu"
VOICE_CALLBACK_THANKS = "voice.callback_thanks"
# The SMS callback: the question (params: item, completed_at), a reply not understood, thanks.
CALLBACK_ASK = "callback.ask"
CALLBACK_REPROMPT = "callback.reprompt"
CALLBACK_THANKS = "callback.thanks"
# The names a hotline case gets when a call arrives with a ticket no business system posted.
HOTLINE_ITEM = "hotline.item_name"
HOTLINE_AGENCY = "hotline.agency_name"
# A rater barred from rating (Shandong's blacklist), on SMS and WeChat. Params: until (datetime).
BARRED = "rating.barred"

ALL: tuple[str, ...] = (
    REMINDER,
    MENU,
    REPROMPT,
    USE_LINK,
    THANKS,
    ASK_REASONS,
    REPROMPT_REASONS,
    ASK_TEXT,
    THANKS_BAD,
    THANKS_TEXT,
    OPTED_OUT,
    NOTHING_TO_RATE,
    UNKNOWN_SENDER,
    REASON_LINE,
    LIST,
    CASE_LINE,
    GREETING,
    TEXT_ONLY,
    GRADE_MENU,
    HELP,
    BARRED,
    VOICE_WELCOME,
    VOICE_GRADE_MENU,
    VOICE_REASONS_MENU,
    VOICE_REASON_LINE,
    VOICE_NO_INPUT,
    VOICE_INVALID,
    VOICE_THANKS,
    VOICE_THANKS_BAD,
    VOICE_GOODBYE,
    VOICE_RATED,
    VOICE_BARRED,
    VOICE_CALLBACK_INTRO,
    VOICE_CALLBACK_MENU,
    VOICE_CALLBACK_THANKS,
    CALLBACK_ASK,
    CALLBACK_REPROMPT,
    CALLBACK_THANKS,
    HOTLINE_ITEM,
    HOTLINE_AGENCY,
)

# A grade's name, as the page shows it: "grade.<value>".
GRADE_NAMES = tuple(f"grade.{g}" for g in ("very_satisfied", "satisfied", "basically_satisfied", "dissatisfied",
                                           "very_dissatisfied"))
