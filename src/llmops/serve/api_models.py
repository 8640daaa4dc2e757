"""Request and response models of the task endpoint, built from the task declaration.

`task_models(task)` gives the pydantic models of POST /v1/answer for the declared input
and output fields, so the OpenAPI schema (and the fuzzing that reads it) names the task's
own fields. Lengths and label values are checked after cleaning (`Package.clean`), where
the answers are 413 and 422 naming the field, so they are described here, not enforced.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from llmops.config.task import Field as TaskField
from llmops.config.task import Task


class AnswerRequest(BaseModel):
    """One input (`input`) or several (`inputs`), and optionally the most tokens to generate
    (at most serve.max_tokens, else 400)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # "10", true and 2.0 are not integers
        json_schema_extra={"oneOf": [{"required": ["input"]}, {"required": ["inputs"]}]},
    )

    # Not nullable: a field is given or left out (exactly one of them, checked below).
    input: BaseModel = None  # type: ignore[assignment]
    inputs: list[BaseModel] = Field(None, min_length=1)  # type: ignore[assignment]
    max_tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def one_of(self) -> AnswerRequest:
        if (self.input is None) == (self.inputs is None):
            raise ValueError("give exactly one of `input` (one item) or `inputs` (a list)")
        return self


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """OpenAI's error body, which every error of the API uses."""

    error: ErrorDetail


# The statuses every route may answer with besides its success (docs/serving.md).
ERRORS = {
    status: {"model": ErrorBody, "description": what}
    for status, what in (
        (
            400,
            "Invalid request: max_tokens over the limit, no user message, n > 1, a body that "
            "cannot be parsed",
        ),
        (401, "Missing or wrong API key"),
        (404, "Unknown model or request id"),
        (408, "The request body did not arrive in time"),
        (
            413,
            "Input over its field's max_chars after cleaning, too many inputs, body too large, "
            "prompt over the model's context",
        ),
        (415, "Body is not JSON (Content-Type: application/json)"),
        (
            422,
            "Body does not match the schema (strict types), text that is not valid Unicode, "
            "or a label not among the field's values",
        ),
        (500, "The model failed to answer this request (others are unaffected)"),
        (503, "Overloaded: too many requests in flight (see Retry-After)"),
    )
}


class FeedbackRequest(BaseModel):
    """A rating of a logged answer, and optionally the answer it should have been."""

    model_config = ConfigDict(extra="forbid", strict=True)

    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    rating: int = Field(ge=1, le=5, description="1 (wrong) to 5 (right)")
    correction: dict[str, str] | None = Field(None, description="corrected output fields")
    comment: str | None = Field(None, max_length=2000)


def _describe(f: TaskField) -> str:
    if f.is_label:
        return f"one of {list(f.values)}"
    return f"text, at most {f.max_chars} characters after cleaning"


def task_models(task: Task) -> tuple[type[AnswerRequest], type[BaseModel]]:
    """The request model of POST /answer for `task`, and its response model."""
    forbid = ConfigDict(extra="forbid", strict=True)
    inputs = create_model(
        "TaskInput",
        __config__=forbid,
        **{f.name: (str, Field(description=_describe(f))) for f in task.inputs},
    )
    request = create_model(
        "AnswerRequest",
        __base__=AnswerRequest,
        input=(inputs, None),
        inputs=(list[inputs], Field(None, min_length=1)),
    )
    output = create_model(
        "TaskOutput",
        **{f.name: (str | None, Field(description=_describe(f))) for f in task.outputs},
    )
    usage = create_model("Usage", prompt_tokens=(int, ...), completion_tokens=(int, ...))
    answer = create_model(
        "TaskAnswer",
        output=(output, ...),
        text=(str, ...),
        parsed=(bool, ...),
        parse_error=(str, ...),
        finish_reason=(str, ...),
        usage=(usage, ...),
    )
    response = create_model(
        "AnswerResponse",
        model=(str, ...),
        version=(str, ...),
        request_id=(str, ...),
        answer=(answer | None, None),
        answers=(list[answer] | None, None),
    )
    return request, response
