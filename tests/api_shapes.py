"""The keys of docs/api.md's objects, checked by the read-model tests and the HTTP contract tests
alike: one list, so the two cannot drift apart."""

from __future__ import annotations

GIG_KEYS = {
    "id", "freelancerId", "title", "currency", "packages", "archived", "rating", "createdAt",
    "updatedAt",
}  # fmt: skip
ORDER_KEYS = {
    "id", "userId", "gigId", "packageId", "freelancerId", "status", "stage", "totalAmount",
    "currency", "package", "revisionsUsed", "requirements", "dueAt", "extension", "createdAt",
    "updatedAt", "version",
}  # fmt: skip
PAYMENT_KEYS = {
    "id", "orderId", "status", "amount", "currency", "paymentMethod", "transactionId",
    "failureReason", "refundedAmount", "refunds", "checkout", "card", "cashplus", "expiresAt",
    "createdAt", "updatedAt", "version",
}  # fmt: skip
