"""The Threadline SDK: a thin, careful layer over the OpenTelemetry SDK.

Modules, one concept each:

* ``client``       ``Threadline``: initialize / flush / shutdown, the span/trace and score methods
* ``config``       settings resolution (argument > environment > default)
* ``state``        the process-wide runtime (our tracer provider and tracer)
* ``observe``      the ``@observe`` decorator / context manager and input capture
* ``spans``        ``SpanRun``: one span from start to its single end
* ``streams``      keeping spans open over coroutines and (async) generators
* ``context``      trace-level session/user/metadata/tags and the span processor stamping them
* ``propagation``  W3C traceparent + baggage carriers across processes
* ``scores``       a score checked and its target read from the current context
* ``score_sender`` scores sent in the background: bounded queue, one thread, batched POSTs
* ``serialize``    bounded JSON that never raises
* ``instrument``   enabling installed LLM client instrumentors
* ``span_type``    ``SpanType``

Import the public names from ``threadline``, not from here.
"""
