"""The OpenAPI 3.1 document describing /api/v1 (kept beside the routes it describes)."""

from __future__ import annotations

from typing import Any

from fedcomments import __version__

_POST_FIELDS = {
    "type": "object",
    "required": ["url", "title"],
    "properties": {
        "url": {"type": "string", "format": "uri", "description": "The blog post's permalink"},
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "content": {"type": "string", "description": "HTML; sanitised on input"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "image": {"type": "string", "format": "uri"},
        "published": {"type": "string", "description": "ISO-8601 date or date-time"},
    },
    "additionalProperties": False,
}

_POST = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "slug": {"type": "string"},
        "url": {"type": "string"},
        "ap_id": {"type": "string"},
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "image": {"type": ["string", "null"]},
        "published": {"type": "string"},
        "updated": {"type": ["string", "null"]},
        "deleted": {"type": ["string", "null"]},
    },
}

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error"],
}


def _op(summary: str, *, body: bool = False, ok: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            ok: {"description": "OK", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Post"}}}},
            "400": {"description": "Invalid input", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}},
            "401": {"description": "Missing or wrong bearer token"},
        },
    }
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/PostFields"}}}}
    return op


def openapi_document(base_url: str) -> dict[str, Any]:
    ref = [{"name": "ref", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "Post id, slug, permalink or ActivityPub id"}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "fedcomments API", "version": __version__},
        "servers": [{"url": base_url}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"PostFields": _POST_FIELDS, "Post": _POST, "Error": _ERROR},
        },
        "paths": {
            "/api/v1/admin/posts": {
                "get": {**_op("List posts"), "responses": {"200": {"description": "OK"},
                                                            "401": {"description": "No token"}}},
                "post": _op("Register a post (same permalink updates)", body=True, ok="201"),
            },
            "/api/v1/admin/posts/{ref}": {
                "parameters": ref,
                "get": _op("Show a post"),
                "put": _op("Update a post", body=True),
                "delete": _op("Delete a post (federates a Delete; the object answers 410)"),
            },
        },
    }
