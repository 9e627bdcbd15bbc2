"""The Threadline SDK: a thin, careful layer over the OpenTelemetry SDK.

Modules, one concept each:

* ``client``       ``Threadline``: initialize / flush / shutdown and the span/trace methods
* ``config``       settings resolution (argument > environment > default)
* ``state``        the process-wide runtime (our tracer provider and tracer)
* ``observe``      the ``@observe`` decorator / context manager and input capture
* ``spans``        ``SpanRun``: one span from start to its single end
* ``streams``      keeping spans open over coroutines and (async) generators
* ``context``      trace-level session/user/metadata/tags and the span processor stamping them
* ``propagation``  W3C traceparent + baggage carriers across processes
* ``serialize``    bounded JSON that never raises
* ``instrument``   enabling installed LLM client instrumentors
* ``span_type``    ``SpanType``

Import the public names from ``threadline``, not from here.
"""
