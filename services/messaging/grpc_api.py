"""The MessagingService servicer: validates every request, calls the application, maps results.

Validation collects every bad field into one ``InvalidArgument`` (details name the
fields); the domain's ``check_*`` rules are reused so the boundary and the
aggregate never disagree.
"""

from __future__ import annotations

import grpc

from kith.common import text
from kith.common.validation import Fields
from kith.messaging.application import (
    ConversationView,
    InboxItemView,
    MessageView,
    MessagingApplication,
)
from kith.messaging.domain import check_client_message_id, check_text, check_title
from kith.protos import messaging_pb2 as pb
from kith.protos import messaging_pb2_grpc

SERVICE_NAME = "kith.messaging.v1.MessagingService"
DEFAULT_CONVERSATIONS = 20
DEFAULT_MESSAGES = 50


def _conversation(view: ConversationView) -> pb.Conversation:
    return pb.Conversation(id=view.id, title=view.title, members=view.members,
                           created_by=view.created_by, created_at_ms=view.created_at_ms,
                           last_seq=view.last_seq, read_seq=view.read_seq,
                           delivered_seq=view.delivered_seq)


def _message(view: MessageView) -> pb.Message:
    return pb.Message(id=view.id, conversation_id=view.conversation_id, seq=view.seq,
                      sender_id=view.sender_id, text=view.text, sent_at_ms=view.sent_at_ms,
                      client_message_id=view.client_message_id)


def _inbox_item(view: InboxItemView) -> pb.InboxItem:
    item = pb.InboxItem(id=view.id, title=view.title, members=view.members,
                        unread_count=view.unread_count, last_seq=view.last_seq,
                        read_seq=view.read_seq)
    if view.last_message is not None:
        item.last_message.CopyFrom(_message(view.last_message))
    return item


class MessagingServicer(messaging_pb2_grpc.MessagingServiceServicer):
    def __init__(self, app: MessagingApplication) -> None:
        self.app = app

    def CreateConversation(self, request: pb.CreateConversationRequest,
                           context: grpc.ServicerContext) -> pb.Conversation:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        members = [fields.uuid(f"member_ids[{i}]", member_id)
                   for i, member_id in enumerate(request.member_ids)]
        if not members:
            fields.add("member_ids", "name at least one other user")
        title = text.clean(request.title)
        fields.rule(check_title, title)
        fields.done()
        return _conversation(self.app.create_conversation(actor, members, title))

    def GetConversation(self, request: pb.GetConversationRequest,
                        context: grpc.ServicerContext) -> pb.Conversation:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        conversation_id = fields.uuid("conversation_id", request.conversation_id)
        fields.done()
        return _conversation(self.app.get_conversation(actor, conversation_id))

    def ListConversations(self, request: pb.ListConversationsRequest,
                          context: grpc.ServicerContext) -> pb.ListConversationsResponse:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        limit = fields.limit(request.limit, DEFAULT_CONVERSATIONS)
        fields.done()
        page = self.app.list_conversations(actor, limit, request.cursor)
        return pb.ListConversationsResponse(items=[_inbox_item(i) for i in page.items],
                                            next_cursor=page.next_cursor)

    def SendMessage(self, request: pb.SendMessageRequest,
                    context: grpc.ServicerContext) -> pb.Message:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        conversation_id = fields.uuid("conversation_id", request.conversation_id)
        fields.rule(check_client_message_id, request.client_message_id)
        fields.rule(check_text, request.text, request.with_photos)
        fields.done()
        return _message(self.app.send_message(actor, conversation_id, request.client_message_id,
                                              request.text))

    def ListMessages(self, request: pb.ListMessagesRequest,
                     context: grpc.ServicerContext) -> pb.ListMessagesResponse:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        conversation_id = fields.uuid("conversation_id", request.conversation_id)
        after_seq = fields.at_least("after_seq", request.after_seq, 0)
        limit = fields.limit(request.limit, DEFAULT_MESSAGES)
        fields.done()
        items, next_after = self.app.list_messages(actor, conversation_id, after_seq, limit)
        return pb.ListMessagesResponse(items=[_message(m) for m in items],
                                       next_after_seq=next_after)

    def MarkRead(self, request: pb.MarkRequest, context: grpc.ServicerContext) -> pb.Empty:
        self.app.mark_read(*self._mark(request))
        return pb.Empty()

    def MarkDelivered(self, request: pb.MarkRequest, context: grpc.ServicerContext) -> pb.Empty:
        self.app.mark_delivered(*self._mark(request))
        return pb.Empty()

    def LeaveConversation(self, request: pb.LeaveConversationRequest,
                          context: grpc.ServicerContext) -> pb.Empty:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        conversation_id = fields.uuid("conversation_id", request.conversation_id)
        fields.done()
        self.app.leave_conversation(actor, conversation_id)
        return pb.Empty()

    @staticmethod
    def _mark(request: pb.MarkRequest) -> tuple[str, str, int]:
        fields = Fields()
        actor = fields.uuid("actor_id", request.actor_id)
        conversation_id = fields.uuid("conversation_id", request.conversation_id)
        seq = fields.at_least("seq", request.seq, 1)
        fields.done()
        return actor, conversation_id, seq
