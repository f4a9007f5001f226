"""Conversations, messages and read receipts (messaging)."""

from __future__ import annotations

from kith.gateway import render
from kith.gateway.errors import invalid
from kith.gateway.media import MEDIA_IDS, create_with_media, photos_of, with_photos
from kith.gateway.operations import api
from kith.gateway.pagination import PAGE_QUERY, open_cursor, seal_cursor
from kith.gateway.profiles import display_names
from kith.gateway.schema import array, integer, obj, string, uuid_string
from kith.gateway.views import Call, Reply
from kith.protos import messaging_pb2

TAG = "messaging"
MAX_SEQ = 2**62
# The member cap itself is the service's (a 409 conversation_too_large); this only bounds input.
MAX_MEMBER_IDS = 1000
MESSAGES_QUERY = {
    "after_seq": {**integer(0, MAX_SEQ, "messages with seq > after_seq (default 0)"),
                  "default": 0},
    "limit": {**integer(1, 100, "page size (default 50)"), "default": 50},
}


@api.operation("POST", "/v1/conversations",
               summary="Start a conversation with people who share a niche with me", tag=TAG,
               status=201, response=render.CONVERSATION, errors=(403, 409),
               body=obj({"member_ids": array(uuid_string(), 1, MAX_MEMBER_IDS)},
                        {"title": string(0, 100)}))
def create_conversation(call: Call) -> Reply:
    c = call.rpc(call.gw.clients.messaging.CreateConversation,
                 messaging_pb2.CreateConversationRequest(
                     actor_id=call.user_id, member_ids=call.body["member_ids"],
                     title=call.body.get("title", "")))
    names = display_names(call, c.members)
    return Reply(201, render.conversation(c, names), {"Location": f"/v1/conversations/{c.id}"})


@api.operation("GET", "/v1/conversations",
               summary="My conversations, most recently active first, with unread counts",
               tag=TAG, query=PAGE_QUERY, response=render.list_of(render.INBOX_ITEM))
def list_conversations(call: Call) -> Reply:
    after = open_cursor(call.gw.cursors, call.query.get("cursor"), "conversations")
    reply = call.rpc(call.gw.clients.messaging.ListConversations,
                     messaging_pb2.ListConversationsRequest(
                         actor_id=call.user_id, limit=call.query["limit"],
                         cursor=after if isinstance(after, str) else ""))
    names = display_names(call, (m for i in reply.items for m in i.members))
    items = [render.inbox_item(i, names) for i in reply.items]
    photos = photos_of(call, [("message", i.last_message.id, i.id) for i in reply.items
                              if i.HasField("last_message")])
    with_photos([i["last_message"] for i in items if i["last_message"]], photos)
    return Reply(200, {"items": items,
                       "next_cursor": seal_cursor(call.gw.cursors, reply.next_cursor,
                                                  "conversations")})


@api.operation("GET", "/v1/conversations/{conversation_id}", summary="A conversation of mine",
               tag=TAG, response=render.CONVERSATION)
def get_conversation(call: Call) -> Reply:
    c = call.rpc(call.gw.clients.messaging.GetConversation, messaging_pb2.GetConversationRequest(
        actor_id=call.user_id, conversation_id=call.params["conversation_id"]))
    return Reply(200, render.conversation(c, display_names(call, c.members)))


@api.operation("POST", "/v1/conversations/{conversation_id}/messages",
               summary="Send a message: text, photos or both (the same client_message_id "
                       "returns the same message)",
               tag=TAG, status=201, response=render.MESSAGE, errors=(403,),
               body=obj({"client_message_id": string(1, 64)},
                        {"text": string(0, 5000), "media_ids": MEDIA_IDS}))
def send_message(call: Call) -> Reply:
    media_ids = call.body.get("media_ids", [])
    text = call.body.get("text", "")
    if not text and not media_ids:
        raise invalid({"text": "text or media_ids is required"},
                      "a message needs text, photos or both")
    m = create_with_media(
        call, media_ids,
        lambda: call.rpc(call.gw.clients.messaging.SendMessage,
                         messaging_pb2.SendMessageRequest(
                             actor_id=call.user_id,
                             conversation_id=call.params["conversation_id"],
                             client_message_id=call.body["client_message_id"],
                             text=text, with_photos=bool(media_ids))),
        lambda m: ("message", m.id, m.conversation_id),
        retry_key=f"{call.params['conversation_id']}\n{call.body['client_message_id']}")
    photos = photos_of(call, [("message", m.id, m.conversation_id)])
    return Reply(201, with_photos([render.message(m)], photos)[0])


@api.operation("GET", "/v1/conversations/{conversation_id}/messages",
               summary="Messages in seq order after after_seq", tag=TAG, query=MESSAGES_QUERY,
               response=render.MESSAGE_PAGE)
def list_messages(call: Call) -> Reply:
    conversation_id = call.params["conversation_id"]
    reply = call.rpc(call.gw.clients.messaging.ListMessages, messaging_pb2.ListMessagesRequest(
        actor_id=call.user_id, conversation_id=conversation_id,
        after_seq=call.query["after_seq"], limit=call.query["limit"]))
    next_after = reply.next_after_seq or None
    photos = photos_of(call, [("message", m.id, m.conversation_id) for m in reply.items])
    return Reply(200, {"items": with_photos([render.message(m) for m in reply.items], photos),
                       "next_cursor": str(next_after) if next_after else None,
                       "next_after_seq": next_after})


@api.operation("POST", "/v1/conversations/{conversation_id}/read",
               summary="Read receipt: I have read up to seq", tag=TAG, status=204,
               errors=(409,), body=obj({"seq": integer(1, MAX_SEQ)}))
def mark_read(call: Call) -> Reply:
    call.rpc(call.gw.clients.messaging.MarkRead, messaging_pb2.MarkRequest(
        actor_id=call.user_id, conversation_id=call.params["conversation_id"],
        seq=call.body["seq"]))
    return Reply(204)


@api.operation("POST", "/v1/conversations/{conversation_id}/delivered",
               summary="Delivery receipt: my device has received up to seq", tag=TAG,
               status=204, errors=(409,), body=obj({"seq": integer(1, MAX_SEQ)}))
def mark_delivered(call: Call) -> Reply:
    call.rpc(call.gw.clients.messaging.MarkDelivered, messaging_pb2.MarkRequest(
        actor_id=call.user_id, conversation_id=call.params["conversation_id"],
        seq=call.body["seq"]))
    return Reply(204)


@api.operation("POST", "/v1/conversations/{conversation_id}/leave",
               summary="Leave a conversation", tag=TAG, status=204)
def leave_conversation(call: Call) -> Reply:
    call.rpc(call.gw.clients.messaging.LeaveConversation,
             messaging_pb2.LeaveConversationRequest(
                 actor_id=call.user_id, conversation_id=call.params["conversation_id"]))
    return Reply(204)
