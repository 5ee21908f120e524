"""The route that mints rule-set tokens, for a product app to hand to its own end users.

Only an API key with the `rules` scope mints one; a token cannot mint another (it could
outlive itself, or reach another set). See `rules.tokens` for what a token reaches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from promptlogic.db.engine import SessionDep
from promptlogic.errors import Forbidden
from promptlogic.rules import tokens
from promptlogic.rules.schemas import SetName
from promptlogic.tenancy.auth import RulesPrincipal
from promptlogic.tenancy.principal import Principal

router = APIRouter(prefix="/v1", tags=["rules"])

Minutes = Annotated[int, Field(strict=True, ge=1, le=tokens.MAX_MINUTES)]
Subject = Annotated[str, AfterValidator(tokens.subject_name)]


class TokenCreate(BaseModel):
    """A token for one rule set, for `minutes`, in the name of `subject`."""

    model_config = ConfigDict(extra="forbid")

    set: SetName = Field(description="The one rule set the token reaches, e.g. `account-42`.")
    minutes: Minutes = Field(
        default=tokens.DEFAULT_MINUTES,
        description=f"How long the token is valid: 1 to {tokens.MAX_MINUTES} minutes.",
    )
    subject: Subject | None = Field(
        default=None,
        description="Your name for the end user (e.g. `customer-42`): the author of the "
        f"rules they save; 1 to {tokens.MAX_SUBJECT_CHARS} printable characters.",
    )


class TokenOut(BaseModel):
    token: str = Field(description="`plr_…`: send it as `Authorization: Bearer <token>`.")
    set: str
    expires_at: datetime = Field(description="Never later than the minting key's own expiry.")


async def _minter(principal: RulesPrincipal) -> Principal:
    """Only an API key mints: a token that minted tokens could outlive itself or leave its set."""
    if principal.kind != "api_key":
        raise Forbidden("Only an API key can mint rule-set tokens; this is a rule-set token.")
    return principal


MinterPrincipal = Annotated[Principal, Depends(_minter)]


@router.post("/rules/tokens", status_code=status.HTTP_201_CREATED)
async def create_rule_token(
    body: TokenCreate,
    principal: MinterPrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
) -> TokenOut:
    """Mint a short-lived token that reaches only the rules of one set (201): hand it to your
    end user. Revoking the minting key revokes its tokens."""
    token, claims = await tokens.mint(
        session,
        request.app.state.rule_tokens,
        principal=principal,
        rule_set=body.set,
        minutes=body.minutes,
        subject=body.subject,
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenOut(token=token, set=claims.rule_set, expires_at=claims.expires)
