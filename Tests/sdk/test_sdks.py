"""The official Python clients against the proxy in front of the simulator, with the metric values
read back through Prometheus' parser. Simulator defaults: 7 prompt tokens, 3 completion tokens
("Hello", " world", "!"), load 0.25 s, prompt eval 0.05 s, 0.02 s per generated token."""

import anthropic
import ollama
import openai

TOKENS = {"X-Sim-Tokens": "4"}


# --- ollama ---------------------------------------------------------------------------------------

def test_ollama_client_streaming_and_not(stack):
    client = ollama.Client(host=stack.proxy_url, headers=TOKENS)
    parts = list(client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert parts[-1].done and parts[-1].eval_count == 4
    text = "".join(part.message.content for part in parts)
    assert text == "Hello world!Hello"
    reply = client.generate(model="llama3.2", prompt="hi")
    assert reply.done and reply.prompt_eval_count == 7

    metrics = stack.metrics()
    assert metrics.value("ollama_requests_total", model="llama3.2", endpoint="/api/chat") == 1
    assert metrics.value("ollama_requests_total", model="llama3.2", endpoint="/api/generate") == 1
    assert metrics.value("ollama_prompt_tokens_total", model="llama3.2") == 14
    assert metrics.value("ollama_completion_tokens_total", model="llama3.2") == 8
    assert metrics.value("ollama_model_load_seconds_total", model="llama3.2") == 0.5
    assert abs(metrics.value("ollama_tokens_per_second", model="llama3.2") - 50) < 1e-9
    assert metrics.value("ollama_active_requests", model="llama3.2", endpoint="/api/chat") == 0


def test_ollama_client_embed_and_model_management_pass_through(stack):
    client = ollama.Client(host=stack.proxy_url)
    result = client.embed(model="nomic-embed-text", input=["a", "b"])
    assert len(result.embeddings) == 2
    assert client.list().models
    assert client.show("llama3.2").modelfile is not None
    try:
        client.chat(model="missing-model", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("expected a 404")
    except ollama.ResponseError as error:
        assert error.status_code == 404
        assert "not found" in error.error

    metrics = stack.metrics()
    assert metrics.value("ollama_requests_total", model="nomic-embed-text", endpoint="/api/embed") == 1
    assert metrics.value("ollama_prompt_tokens_total", model="nomic-embed-text") == 14
    assert metrics.value("ollama_request_failures_total", model="__rejected__", endpoint="/api/chat", reason="http_4xx") == 1


# --- openai ---------------------------------------------------------------------------------------

def openai_client(stack):
    return openai.OpenAI(base_url=stack.proxy_url + "/v1", api_key="unused", default_headers=TOKENS)


def test_openai_streaming_chat_without_usage_never_sees_the_usage_chunk(stack):
    client = openai_client(stack)
    chunks = list(client.chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True,
    ))
    # The SDK's own users index choices[0] on every chunk: it must always be there.
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "Hello world!Hello"

    metrics = stack.metrics()
    assert metrics.value("ollama_requests_total", model="llama3.2", endpoint="/v1/chat/completions") == 1
    assert metrics.value("ollama_prompt_tokens_total", model="llama3.2") == 7
    assert metrics.value("ollama_completion_tokens_total", model="llama3.2") == 4


def test_openai_streaming_chat_with_usage_gets_it_exactly_once(stack):
    client = openai_client(stack)
    chunks = list(client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True},
    ))
    usages = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usages) == 1 and usages[0].completion_tokens == 4 and usages[0].prompt_tokens == 7
    assert stack.metrics().value("ollama_completion_tokens_total", model="m") == 4


def test_openai_stream_helper_and_non_streaming(stack):
    client = openai_client(stack)
    with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello world!Hello"
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert reply.usage.completion_tokens == 4

    metrics = stack.metrics()
    assert metrics.value("ollama_requests_total", model="m", endpoint="/v1/chat/completions") == 2
    assert metrics.value("ollama_completion_tokens_total", model="m") == 8
    assert metrics.value("ollama_prompt_tokens_total", model="m") == 14


def test_openai_completions_embeddings_and_responses(stack):
    client = openai_client(stack)
    chunks = list(client.completions.create(model="m", prompt="hi", stream=True))
    assert all(chunk.choices for chunk in chunks)
    embedding = client.embeddings.create(model="e", input=["a", "b", "c"])
    assert embedding.usage.prompt_tokens == 21
    events = list(client.responses.create(model="r", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    response = client.responses.create(model="r", input="hi")
    assert response.usage.output_tokens == 4

    metrics = stack.metrics()
    assert metrics.value("ollama_requests_total", model="m", endpoint="/v1/completions") == 1
    assert metrics.value("ollama_completion_tokens_total", model="m") == 4
    assert metrics.value("ollama_prompt_tokens_total", model="e") == 21
    assert metrics.value("ollama_requests_total", model="r", endpoint="/v1/responses") == 2
    assert metrics.value("ollama_completion_tokens_total", model="r") == 8


def test_openai_sdk_sees_an_unreachable_ollama_as_an_api_error(stack):
    client = openai.OpenAI(base_url=stack.proxy_url + "/v1", api_key="unused", max_retries=0,
                           default_headers={"X-Sim-Status": "500"})
    try:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("expected an error")
    except openai.InternalServerError as error:
        assert error.status_code == 500
    metrics = stack.metrics()
    # Ollama never accepted the name "m" (its only answer was the 500), so it is no label of its own.
    assert metrics.value("ollama_request_failures_total", model="__rejected__", endpoint="/v1/chat/completions", reason="http_5xx") == 1
    assert metrics.value("ollama_request_failures_total", model="m", endpoint="/v1/chat/completions", reason="http_5xx") is None


# --- anthropic ------------------------------------------------------------------------------------

def anthropic_client(stack):
    return anthropic.Anthropic(base_url=stack.proxy_url, api_key="unused", default_headers=TOKENS)


def test_anthropic_stream_helper_counts_real_input_tokens(stack):
    client = anthropic_client(stack)
    long_prompt = "please explain " * 50  # Ollama's message_start estimate (bytes/4) is far from 7
    with client.messages.stream(model="llama3.2", max_tokens=64,
                                messages=[{"role": "user", "content": long_prompt}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello world!Hello"
    assert final.usage.output_tokens == 4

    metrics = stack.metrics()
    assert metrics.value("ollama_requests_total", model="llama3.2", endpoint="/v1/messages") == 1
    assert metrics.value("ollama_prompt_tokens_total", model="llama3.2") == 7
    assert metrics.value("ollama_completion_tokens_total", model="llama3.2") == 4


def test_anthropic_raw_stream_and_non_streaming(stack):
    client = anthropic_client(stack)
    events = list(client.messages.create(model="m", max_tokens=64, stream=True,
                                         messages=[{"role": "user", "content": "hi"}]))
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    message = client.messages.create(model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert message.usage.input_tokens == 7 and message.usage.output_tokens == 4

    metrics = stack.metrics()
    assert metrics.value("ollama_requests_total", model="m", endpoint="/v1/messages") == 2
    assert metrics.value("ollama_completion_tokens_total", model="m") == 8


def test_a_client_that_hangs_up_mid_stream_is_counted_once_and_released(stack):
    client = openai.OpenAI(base_url=stack.proxy_url + "/v1", api_key="unused",
                           default_headers={"X-Sim-Tokens": "1000", "X-Sim-Token-Delay-Ms": "20"})
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    next(iter(stream))
    stream.close()

    metrics = stack.metrics_until(lambda m: m.value(
        "ollama_request_failures_total", model="m", endpoint="/v1/chat/completions", reason="client_disconnected") == 1)
    assert metrics.value("ollama_active_requests", model="m", endpoint="/v1/chat/completions") == 0
    assert metrics.value("ollama_requests_total", model="m", endpoint="/v1/chat/completions") == 0


# --- serving insight, parsed by prometheus_client -------------------------------------------------

def test_serving_insight_families_through_the_sdks(stack):
    ollama.Client(host=stack.proxy_url, headers=TOKENS).generate(model="llama3.2", prompt="hi", stream=False)
    list(openai_client(stack).chat.completions.create(
        model="qwen3:8b", messages=[{"role": "user", "content": "hi"}], stream=True,
    ))
    with anthropic.Anthropic(base_url=stack.proxy_url, api_key="unused", default_headers=TOKENS).messages.stream(
        model="qwen3:8b", max_tokens=64, messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        stream.get_final_message()

    metrics = stack.metrics()
    assert metrics.value("ollama_up") == 1
    assert metrics.value("ollama_version_info", version="0.33.0") == 1
    assert metrics.value("ollama_loaded_model_context_length", model="llama3.2:latest") == 4096
    for endpoint in ("/v1/chat/completions", "/v1/messages"):
        assert metrics.value("ollama_time_to_first_token_seconds_count", model="qwen3:8b", endpoint=endpoint) == 1
        assert metrics.value("ollama_request_completion_tokens_sum", model="qwen3:8b", endpoint=endpoint) == 4
        assert metrics.value("ollama_request_finish_reasons_total", model="qwen3:8b", endpoint=endpoint, finish_reason="stop") == 1
    native = {"model": "llama3.2", "endpoint": "/api/generate"}
    assert metrics.value("ollama_time_to_first_token_seconds_count", **native) is None  # not streamed
    assert abs(metrics.value("ollama_time_per_output_token_seconds_sum", **native) - 0.02) < 1e-9
    assert abs(metrics.value("ollama_prompt_tokens_per_second", model="llama3.2") - 140) < 1e-9
    assert metrics.value("ollama_request_prompt_tokens_bucket", le="8.0", **native) == 1
    assert metrics.value("process_open_fds") > 0
