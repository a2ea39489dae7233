"""SES event parsing and effects, on AWS's own sample payloads (tests/fixtures/ses)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from scheduler.delivery.ses_effects import (
    CountSendDay,
    MessageStatus,
    RecordSoftBounce,
    SendDayColumn,
    SetMessageStatus,
    SetTopicPreferences,
    Suppress,
    effects,
    status_supersedes,
)
from scheduler.delivery.ses_events import (
    VALIDATION_NOTICE,
    EventKind,
    EventParseError,
    SesEvent,
    TopicStatus,
    parse_ses_event,
    parse_sqs_body,
    unwrap_sqs_body,
)
from scheduler.errors import InvalidInput

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ses"
RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EXAMPLE_ID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"


def fixture_text(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture_text(name))
    return data


def parse(data: dict[str, Any] | str, sns_message_id: str | None = None) -> SesEvent:
    return parse_ses_event(data, received_at=RECEIVED, sns_message_id=sns_message_id)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


ALL_FIXTURES = sorted(path.stem for path in FIXTURES.glob("*.json"))

EXPECTED_KIND = {
    "event-bounce": EventKind.BOUNCE,
    "event-click": EventKind.CLICK,
    "event-complaint": EventKind.COMPLAINT,
    "event-delivery": EventKind.DELIVERY,
    "event-delivery-delay": EventKind.DELIVERY_DELAY,
    "event-open": EventKind.OPEN,
    "event-reject": EventKind.REJECT,
    "event-rendering-failure": EventKind.RENDERING_FAILURE,
    "event-send": EventKind.SEND,
    "event-subscription": EventKind.SUBSCRIPTION,
    "notification-bounce-with-dsn": EventKind.BOUNCE,
    "notification-bounce-without-dsn": EventKind.BOUNCE,
    "notification-complaint-with-feedback": EventKind.COMPLAINT,
    "notification-complaint-without-feedback": EventKind.COMPLAINT,
    "notification-delivery": EventKind.DELIVERY,
}


def test_every_fixture_is_covered() -> None:
    assert set(ALL_FIXTURES) == set(EXPECTED_KIND)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_parses_to_its_kind(name: str) -> None:
    event = parse(fixture_text(name))
    assert event.kind is EXPECTED_KIND[name]
    assert event.ses_message_id
    assert event.timestamp.tzinfo is UTC
    assert event.recipients
    assert event.raw == fixture(name)
    assert event.event_id.startswith("ses-")
    assert parse(fixture(name)).event_id == event.event_id  # stable across redelivery


# --- one fixture at a time: fields and effects ---------------------------------------------


def test_event_publishing_bounce() -> None:
    event = parse(fixture_text("event-bounce"))
    assert event.type_name == "Bounce"
    assert event.ses_message_id == EXAMPLE_ID
    assert event.timestamp == at("2017-08-05T00:41:02.669+00:00")
    assert event.mail_timestamp == at("2017-08-05T00:40:02.012+00:00")
    assert event.recipients == ("recipient@example.com",)
    assert (event.bounce_type, event.bounce_subtype) == ("Permanent", "General")
    assert not event.on_account_suppression_list
    assert event.feedback_id == "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000"
    assert event.tags["ses:configuration-set"] == ("ConfigSet",)
    assert event.configuration_set == "ConfigSet"
    assert effects(event) == [
        SetMessageStatus(EXAMPLE_ID, MessageStatus.BOUNCED, event.timestamp, "Permanent/General"),
        Suppress("recipient@example.com", "hard_bounce", "General", True, event.timestamp),
        CountSendDay(SendDayColumn.BOUNCED, date(2017, 8, 5), 1, "ConfigSet"),
    ]


def test_notification_bounce_with_two_recipients() -> None:
    event = parse(fixture_text("notification-bounce-without-dsn"))
    assert event.type_name == "Bounce"
    assert event.recipients == ("jane@example.com", "richard@example.com")
    assert event.tags == {}
    assert event.configuration_set is None
    suppressed = [e.email for e in effects(event) if isinstance(e, Suppress)]
    assert suppressed == ["jane@example.com", "richard@example.com"]
    counts = [e for e in effects(event) if isinstance(e, CountSendDay)]
    assert counts == [CountSendDay(SendDayColumn.BOUNCED, date(2016, 1, 27), 2, None)]


def test_notification_bounce_with_dsn() -> None:
    event = parse(fixture_text("notification-bounce-with-dsn"))
    assert event.recipients == ("jane@example.com",)
    assert event.ses_message_id == "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000"
    assert [e.email for e in effects(event) if isinstance(e, Suppress)] == ["jane@example.com"]


def test_event_publishing_complaint() -> None:
    event = parse(fixture_text("event-complaint"))
    assert event.complaint_feedback_type == "abuse"
    assert event.recipients == ("recipient@example.com",)
    assert effects(event) == [
        SetMessageStatus(EXAMPLE_ID, MessageStatus.COMPLAINED, event.timestamp, "abuse"),
        Suppress("recipient@example.com", "complaint", "abuse", True, event.timestamp),
        CountSendDay(SendDayColumn.COMPLAINED, date(2017, 8, 5), 1, "ConfigSet"),
    ]


@pytest.mark.parametrize(
    ("name", "feedback_type"),
    [
        ("notification-complaint-with-feedback", "abuse"),
        ("notification-complaint-without-feedback", None),
    ],
)
def test_notification_complaints_suppress(name: str, feedback_type: str | None) -> None:
    event = parse(fixture_text(name))
    assert event.complaint_feedback_type == feedback_type
    assert event.recipients == ("richard@example.com",)
    suppress = [e for e in effects(event) if isinstance(e, Suppress)]
    assert suppress == [
        Suppress("richard@example.com", "complaint", feedback_type, True, event.timestamp)
    ]


def test_event_publishing_delivery() -> None:
    event = parse(fixture_text("event-delivery"))
    assert event.timestamp == at("2016-10-19T23:21:04.133+00:00")
    assert event.tags["myCustomTag1"] == ("myCustomTagValue1",)
    assert effects(event) == [
        SetMessageStatus(
            EXAMPLE_ID, MessageStatus.DELIVERED, event.timestamp, "250 2.6.0 Message received"
        ),
        CountSendDay(SendDayColumn.DELIVERED, date(2016, 10, 19), 1, "ConfigSet"),
    ]


def test_notification_delivery() -> None:
    event = parse(fixture_text("notification-delivery"))
    assert event.type_name == "Delivery"
    assert event.recipients == ("jane@example.com",)
    assert [type(e) for e in effects(event)] == [SetMessageStatus, CountSendDay]


def test_send_needs_nothing_because_the_sender_counts_sent() -> None:
    event = parse(fixture_text("event-send"))
    assert event.timestamp == at("2016-10-14T05:02:16.645+00:00")  # mail.timestamp
    assert effects(event) == []


def test_reject() -> None:
    event = parse(fixture_text("event-reject"))
    assert event.detail == "Bad content"
    assert event.recipients == ("sender@example.com",)  # the AWS sample's destination
    assert effects(event) == [
        SetMessageStatus(EXAMPLE_ID, MessageStatus.REJECTED, event.timestamp, "Bad content"),
        CountSendDay(SendDayColumn.REJECTED, date(2016, 10, 14), 1, "ConfigSet"),
    ]


@pytest.mark.parametrize("name", ["event-open", "event-click"])
def test_engagement_events_need_nothing(name: str) -> None:
    event = parse(fixture_text(name))
    assert event.recipients == ("recipient@example.com",)
    assert effects(event) == []


def test_rendering_failure() -> None:
    event = parse(fixture_text("event-rendering-failure"))
    assert event.timestamp == at("2018-01-22T18:43:06.197+00:00")
    assert effects(event) == [
        SetMessageStatus(
            EXAMPLE_ID,
            MessageStatus.RENDERING_FAILED,
            event.timestamp,
            "Attribute 'attributeName' is not present in the rendering data.",
        )
    ]


def test_delivery_delay() -> None:
    event = parse(fixture_text("event-delivery-delay"))
    assert event.timestamp == at("2020-06-16T00:25:40.095+00:00")
    assert event.recipients == ("recipient@example.com",)
    assert effects(event) == [
        SetMessageStatus(
            EXAMPLE_ID,
            MessageStatus.DELIVERY_DELAYED,
            event.timestamp,
            "TransientCommunicationFailure",
        )
    ]


def test_subscription() -> None:
    event = parse(fixture_text("event-subscription"))
    prefs = event.topic_preferences
    assert prefs is not None
    assert prefs.unsubscribe_all
    assert prefs.topics == (TopicStatus("ExampleTopicName", "OptOut"),)
    assert not prefs.topics[0].opted_in
    assert (prefs.contact_list, prefs.source) == ("ContactListName", "UnsubscribeHeader")
    assert effects(event) == [
        SetTopicPreferences("recipient@example.com", True, prefs.topics, event.timestamp)
    ]


# --- variants of the samples ---------------------------------------------------------------


def bounce(bounce_type: str | None, subtype: str | None) -> dict[str, Any]:
    data = fixture("event-bounce")
    data["bounce"]["bounceType"] = bounce_type
    data["bounce"]["bounceSubType"] = subtype
    return data


@pytest.mark.parametrize(
    ("bounce_type", "subtype"),
    [("Transient", "MailboxFull"), ("Transient", "General"), ("Undetermined", "Undetermined")],
)
def test_soft_bounces_are_recorded_not_suppressed_nor_counted(
    bounce_type: str, subtype: str
) -> None:
    event = parse(bounce(bounce_type, subtype))
    assert effects(event) == [
        SetMessageStatus(
            EXAMPLE_ID, MessageStatus.BOUNCED, event.timestamp, f"{bounce_type}/{subtype}"
        ),
        RecordSoftBounce("recipient@example.com", bounce_type, subtype, event.timestamp),
    ]


def test_a_bounce_without_a_type_is_treated_as_undetermined() -> None:
    soft = [e for e in effects(parse(bounce(None, None))) if isinstance(e, RecordSoftBounce)]
    assert [e.bounce_type for e in soft] == ["Undetermined"]


def test_on_account_suppression_list_bounce_is_recorded_but_not_new() -> None:
    event = parse(bounce("Permanent", "OnAccountSuppressionList"))
    assert event.on_account_suppression_list
    assert effects(event) == [
        SetMessageStatus(
            EXAMPLE_ID,
            MessageStatus.BOUNCED,
            event.timestamp,
            "Permanent/OnAccountSuppressionList",
        ),
        Suppress(
            "recipient@example.com",
            "hard_bounce",
            "OnAccountSuppressionList",
            False,
            event.timestamp,
        ),
    ]


def test_global_suppression_list_bounce_counts() -> None:
    result = effects(parse(bounce("Permanent", "Suppressed")))
    assert any(isinstance(e, CountSendDay) for e in result)
    assert [e.new_evidence for e in result if isinstance(e, Suppress)] == [True]


def test_unsubscribed_recipient_bounce_suppresses_nothing() -> None:
    result = effects(parse(bounce("Permanent", "UnsubscribedRecipient")))
    assert [type(e) for e in result] == [SetMessageStatus]


def complaint(**changes: Any) -> dict[str, Any]:
    data = fixture("event-complaint")
    data["complaint"].update(changes)
    return data


def test_on_account_suppression_list_complaint_is_recorded_but_not_counted() -> None:
    event = parse(complaint(complaintSubType="OnAccountSuppressionList"))
    assert event.on_account_suppression_list
    result = effects(event)
    assert [e.new_evidence for e in result if isinstance(e, Suppress)] == [False]
    assert not any(isinstance(e, CountSendDay) for e in result)


def test_not_spam_feedback_is_not_a_complaint() -> None:
    assert effects(parse(complaint(complaintFeedbackType="not-spam"))) == []


def test_a_redacted_complaint_falls_back_to_the_single_destination() -> None:
    event = parse(complaint(complainedRecipients=[]))
    assert event.recipients == ("recipient@example.com",)
    several = complaint(complainedRecipients=[])
    several["mail"]["destination"] = ["a@example.com", "b@example.com"]
    assert parse(several).recipients == ()


def test_a_delivery_for_two_recipients_counts_two() -> None:
    data = fixture("event-delivery")
    data["delivery"]["recipients"] = ["a@example.com", "b@example.com"]
    counts = [e for e in effects(parse(data)) if isinstance(e, CountSendDay)]
    assert [c.amount for c in counts] == [2]


def test_the_send_day_is_the_day_the_mail_was_sent() -> None:
    data = fixture("event-complaint")
    data["complaint"]["timestamp"] = "2017-08-07T10:00:00.000Z"  # complaint two days later
    counts = [e for e in effects(parse(data)) if isinstance(e, CountSendDay)]
    assert [c.day for c in counts] == [date(2017, 8, 5)]


def test_an_event_without_a_message_id_changes_no_message() -> None:
    data = fixture("event-delivery")
    del data["mail"]["messageId"]
    assert [type(e) for e in effects(parse(data))] == [CountSendDay]


@pytest.mark.parametrize(
    "type_name", ["Rendering Failure", "RenderingFailure", "RENDERING_FAILURE"]
)
def test_type_names_are_matched_loosely(type_name: str) -> None:
    data = fixture("event-rendering-failure") | {"eventType": type_name}
    assert parse(data).kind is EventKind.RENDERING_FAILURE


# --- unknown input never raises; garbage does ----------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"eventType": "Pigeon", "mail": {"messageId": "m-1", "timestamp": "2026-03-01T00:00Z"}},
        {"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"},
        {"hello": "world"},
        {},
    ],
    ids=["new-event-type", "subscription-succeeded", "no-type", "empty"],
)
def test_unknown_events_parse_as_unknown_and_do_nothing(data: dict[str, Any]) -> None:
    event = parse(data)
    assert event.kind is EventKind.UNKNOWN
    assert effects(event) == []


def test_an_event_without_any_time_takes_the_receive_time() -> None:
    event = parse({"eventType": "Delivery", "mail": {"messageId": "m-1"}})
    assert event.timestamp == RECEIVED
    assert event.event_id == parse({"eventType": "Delivery", "mail": {"messageId": "m-1"}}).event_id


def test_an_unreadable_timestamp_is_treated_as_absent() -> None:
    data = fixture("event-delivery")
    data["delivery"]["timestamp"] = "yesterday"
    assert parse(data).timestamp == at("2016-10-19T23:20:52.240+00:00")  # mail.timestamp


@pytest.mark.parametrize(
    "text", ["not json", "[1, 2]", '"a string"', "", '{"eventType": 7}'], ids=repr
)
def test_garbage_raises_event_parse_error(text: str) -> None:
    with pytest.raises(EventParseError):
        parse(text)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("mail",), "a string"),
        (("mail", "destination"), "recipient@example.com"),
        (("mail", "tags"), ["ses:configuration-set"]),
        (("mail", "messageId"), 42),
        (("bounce", "bouncedRecipients"), [{"emailAddress": 7}]),
        (("bounce", "bouncedRecipients"), ["recipient@example.com"]),
    ],
)
def test_wrongly_typed_fields_raise(path: tuple[str, ...], value: Any) -> None:
    data = fixture("event-bounce")
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(EventParseError):
        parse(data)


def test_event_parse_error_is_invalid_input() -> None:
    assert issubclass(EventParseError, InvalidInput)


def test_a_naive_receive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_ses_event({}, received_at=datetime(2026, 3, 2))


# --- event ids -----------------------------------------------------------------------------


def test_the_sns_message_id_is_the_event_id() -> None:
    assert parse(fixture("event-bounce"), sns_message_id="sns-1").event_id == "sns-1"


def test_derived_ids_tell_events_apart() -> None:
    base = fixture("event-bounce")
    other_kind = fixture("event-bounce") | {"eventType": "Complaint", "complaint": base["bounce"]}
    later = fixture("event-bounce")
    later["bounce"]["timestamp"] = "2017-08-05T00:41:03.000Z"
    other_feedback = fixture("event-bounce")
    other_feedback["bounce"]["feedbackId"] = "another"
    ids = {parse(data).event_id for data in (base, other_kind, later, other_feedback)}
    assert len(ids) == 4


def test_derived_ids_ignore_fields_that_do_not_name_the_event() -> None:
    base = fixture("event-bounce")
    extra = fixture("event-bounce") | {"newFieldFromAws": {"x": 1}}
    assert parse(base).event_id == parse(extra).event_id
    assert len(parse(base).event_id) <= 64


# --- SQS bodies ----------------------------------------------------------------------------


def sns_wrapped(message: str, message_type: str = "Notification") -> str:
    return json.dumps(
        {
            "Type": message_type,
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:timeplan-ses-events",
            "Message": message,
            "Timestamp": "2026-03-02T09:15:05.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem",
        }
    )


def test_an_sns_wrapped_body_unwraps_to_its_message_id_and_event() -> None:
    unwrapped = unwrap_sqs_body(sns_wrapped(fixture_text("event-bounce")))
    assert unwrapped == ("95df01b4-ee98-5cb9-9903-4c221d41eb5e", fixture("event-bounce"))


def test_a_raw_body_unwraps_without_an_sns_id() -> None:
    assert unwrap_sqs_body(fixture_text("notification-delivery")) == (
        None,
        fixture("notification-delivery"),
    )


@pytest.mark.parametrize(
    "body",
    [
        VALIDATION_NOTICE,
        VALIDATION_NOTICE + "\n",
        sns_wrapped(VALIDATION_NOTICE),
        sns_wrapped("You have chosen to subscribe", "SubscriptionConfirmation"),
        sns_wrapped("You have chosen to unsubscribe", "UnsubscribeConfirmation"),
    ],
    ids=["notice", "notice-newline", "wrapped-notice", "sub-confirmation", "unsub-confirmation"],
)
def test_bodies_without_an_event_are_ignored(body: str) -> None:
    assert unwrap_sqs_body(body) is None
    assert parse_sqs_body(body, received_at=RECEIVED) is None


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        sns_wrapped("not json either"),
        sns_wrapped(fixture_text("event-bounce"), "Surprise"),
        json.dumps({"Type": "Notification", "Message": {"eventType": "Bounce"}}),
    ],
    ids=["not-json", "wrapped-not-json", "unknown-sns-type", "message-not-a-string"],
)
def test_unreadable_bodies_raise(body: str) -> None:
    with pytest.raises(EventParseError):
        unwrap_sqs_body(body)


def test_parse_sqs_body_uses_the_sns_id() -> None:
    event = parse_sqs_body(sns_wrapped(fixture_text("event-delivery")), received_at=RECEIVED)
    assert event is not None
    assert event.kind is EventKind.DELIVERY
    assert event.event_id == "95df01b4-ee98-5cb9-9903-4c221d41eb5e"


# --- message status order ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new", "current", "expected"),
    [
        (MessageStatus.DELIVERED, "sent", True),
        (MessageStatus.DELIVERED, None, True),
        (MessageStatus.DELIVERED, "delivery_delayed", True),
        (MessageStatus.BOUNCED, "delivered", True),
        (MessageStatus.DELIVERED, "bounced", False),
        (MessageStatus.DELIVERY_DELAYED, "delivered", False),
        (MessageStatus.COMPLAINED, "bounced", True),
        (MessageStatus.BOUNCED, "complained", False),
        (MessageStatus.DELIVERED, "delivered", False),
    ],
)
def test_status_only_moves_up(new: MessageStatus, current: str | None, expected: bool) -> None:
    assert status_supersedes(new, current) is expected
