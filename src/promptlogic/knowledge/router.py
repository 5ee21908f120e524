"""Routes of knowledge collections: thin wrappers over the service and the ingestion queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Forbidden
from promptlogic.knowledge import service
from promptlogic.knowledge.embeddings import Embedders
from promptlogic.knowledge.ingestion import enqueue_ingestion
from promptlogic.knowledge.schemas import (
    DOCUMENT_ID_PATTERN,
    CollectionCreate,
    CollectionOut,
    DocumentIn,
    DocumentOut,
    HitOut,
    SearchOut,
    SearchRequest,
    Status,
)
from promptlogic.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from promptlogic.prompts.schemas import NAME_PATTERN
from promptlogic.tenancy.auth import PrincipalDep, ReadPrincipal, WritePrincipal
from promptlogic.tenancy.principal import Principal
from promptlogic.tenancy.roles import Scope

router = APIRouter(prefix="/v1/collections", tags=["collections"])

CollectionPath = Annotated[str, Path(pattern=NAME_PATTERN, description="The collection's name.")]
DocumentPath = Annotated[
    str, Path(pattern=DOCUMENT_ID_PATTERN, description="The document's id, as you gave it.")
]


async def _searcher(principal: PrincipalDep) -> Principal:
    """Search is a read, and what an app's `run` key needs for retrieval of its own."""
    if not (principal.can(Scope.READ) or principal.can(Scope.RUN)):
        raise Forbidden("This API key lacks the `read` or `run` scope.")
    return principal


SearchPrincipal = Annotated[Principal, Depends(_searcher)]


def _embedders(request: Request) -> Embedders:
    return Embedders(request.app.state.providers)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_collection(
    body: CollectionCreate, principal: WritePrincipal, session: SessionDep, request: Request
) -> CollectionOut:
    """Create a collection; its embedding (offline by default) is fixed from now on."""
    collection = await service.create_collection(
        session,
        tenant_id=principal.tenant_id,
        body=body,
        embedders=_embedders(request),
        actor=principal.actor,
    )
    return service.collection_out(collection, service.Counts())


@router.get("")
async def list_collections(
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[CollectionOut]:
    """The tenant's collections by name, with their document and chunk counts."""
    found, next_cursor = await service.list_collections(
        session, tenant_id=principal.tenant_id, limit=limit, cursor=cursor
    )
    counts = await service.counts_of(
        session, tenant_id=principal.tenant_id, collection_ids=[c.id for c in found]
    )
    items = [service.collection_out(c, counts[c.id]) for c in found]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{collection}")
async def get_collection(
    collection: CollectionPath, principal: ReadPrincipal, session: SessionDep
) -> CollectionOut:
    """One collection with its document and chunk counts."""
    found = await service.get_collection(session, tenant_id=principal.tenant_id, name=collection)
    counts = await service.counts_of(
        session, tenant_id=principal.tenant_id, collection_ids=[found.id]
    )
    return service.collection_out(found, counts[found.id])


@router.delete("/{collection}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_collection(
    collection: CollectionPath, principal: WritePrincipal, session: SessionDep
) -> None:
    """Delete a collection with all its documents and chunks."""
    await service.delete_collection(
        session, tenant_id=principal.tenant_id, name=collection, actor=principal.actor
    )


@router.post("/{collection}/documents", status_code=status.HTTP_202_ACCEPTED)
async def add_document(
    collection: CollectionPath,
    body: DocumentIn,
    principal: WritePrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
) -> DocumentOut:
    """Add or replace a document (202: it is `pending` until its chunks are searchable;
    follow its `status` and `progress`). The same content again answers 200 and changes
    nothing."""
    added = await service.add_document(
        session,
        tenant_id=principal.tenant_id,
        collection=collection,
        body=body,
        actor=principal.actor,
    )
    if added.changed:
        await enqueue_ingestion(
            session, request.app.state.sessionmaker, _embedders(request), added.document
        )
    else:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = (
        f"/v1/collections/{added.collection.name}/documents/{added.document.external_id}"
    )
    return service.document_out(added.document)


@router.get("/{collection}/documents")
async def list_documents(
    collection: CollectionPath,
    principal: ReadPrincipal,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    status: Status | None = None,
) -> Page[DocumentOut]:
    """A collection's documents by id, with their ingestion status."""
    found, next_cursor = await service.list_documents(
        session,
        tenant_id=principal.tenant_id,
        collection=collection,
        limit=limit,
        cursor=cursor,
        status=status,
    )
    return Page(items=[service.document_out(d) for d in found], next_cursor=next_cursor)


@router.get("/{collection}/documents/{document_id}")
async def get_document(
    collection: CollectionPath,
    document_id: DocumentPath,
    principal: ReadPrincipal,
    session: SessionDep,
) -> DocumentOut:
    """One document: its status, progress, error, chunk count and metadata."""
    document = await service.get_document(
        session, tenant_id=principal.tenant_id, collection=collection, document_id=document_id
    )
    return service.document_out(document)


@router.delete("/{collection}/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(
    collection: CollectionPath,
    document_id: DocumentPath,
    principal: WritePrincipal,
    session: SessionDep,
) -> None:
    """Delete a document; its chunks leave every search at once."""
    await service.delete_document(
        session,
        tenant_id=principal.tenant_id,
        collection=collection,
        document_id=document_id,
        actor=principal.actor,
    )


@router.post("/{collection}/search")
async def search(
    collection: CollectionPath,
    body: SearchRequest,
    principal: SearchPrincipal,
    session: SessionDep,
    request: Request,
) -> SearchOut:
    """The `k` chunks that best match `query`: vector and full-text rankings fused
    (reciprocal rank fusion), among the chunks whose metadata passes `filter`."""
    hits = await service.search(
        session,
        tenant_id=principal.tenant_id,
        collection=collection,
        query=body.query,
        k=body.k,
        filter=body.filter,
        embedders=_embedders(request),
    )
    return SearchOut(
        hits=[
            HitOut(
                id=hit.id,
                document_id=hit.document_id,
                chunk_index=hit.chunk_index,
                heading=hit.heading,
                text=hit.text,
                score=hit.score,
                vector_rank=hit.vector_rank,
                text_rank=hit.text_rank,
                similarity=hit.similarity,
                metadata=hit.metadata,
            )
            for hit in hits
        ]
    )
