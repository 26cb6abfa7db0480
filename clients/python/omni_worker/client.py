"""Client(url, token): the routes of `omni-worker serve` from Python, standard library only."""
import http.client
import json
import time
import urllib.parse

from . import safetensors
from .rollout import Rollout
from .tensor import Tensor, as_tensor, convert, default_return_type, is_tensor

TENSOR_REF = '__tensor__'
# Core request fields in Python's spelling -> the worker's.
_REQUEST_KEYS = {'num_outputs_per_prompt': 'numOutputsPerPrompt', 'negative_prompt': 'negativePrompt', 'guidance_scale': 'guidanceScale'}


class OmniWorkerError(RuntimeError):
    """A refusal: `status` (HTTP), `message`, and where known `field` and `request` (index)."""

    def __init__(self, status, message, field=None, request=None):
        super().__init__(f'{status}: {message}')
        self.status, self.message, self.field, self.request = status, message, field, request


def _read_body(resp):
    """The answer's body in one writable buffer, read straight into it when its length is known:
    tensors of a rollout are then views of it (no second copy of many MB)."""
    length = resp.getheader('Content-Length')
    if length is None:
        return bytearray(resp.read())
    data = bytearray(int(length))
    view = memoryview(data)
    got = 0
    while got < len(data):
        n = resp.readinto(view[got:])
        if not n:
            raise http.client.IncompleteRead(bytes(view[:got]), len(data) - got)
        got += n
    return data


def _request_dict(r, i):
    if not isinstance(r, dict):
        raise TypeError(f'request {i}: expected a dict, got {type(r).__name__}')
    return {_REQUEST_KEYS.get(k, k): v for k, v in r.items()}


def _detach(value, tensors):
    """JSON with {"__tensor__": name} where tensors stood; the tensors collected by name."""
    if is_tensor(value):
        name = f't{len(tensors)}'
        tensors[name] = as_tensor(value, name)
        return {TENSOR_REF: name}
    if isinstance(value, dict):
        return {str(k): _detach(v, tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_detach(v, tensors) for v in value]
    return value


def _attach(value, tensors, return_type):
    if isinstance(value, dict):
        if len(value) == 1 and TENSOR_REF in value:
            return convert(tensors[value[TENSOR_REF]], return_type)
        return {k: _attach(v, tensors, return_type) for k, v in value.items()}
    if isinstance(value, list):
        return [_attach(v, tensors, return_type) for v in value]
    return value


def _peft_config(config):
    """A PEFT LoraConfig (or its dict) as the JSON adapter_config.json holds."""
    if hasattr(config, 'to_dict'):
        config = config.to_dict()
    if not isinstance(config, dict):
        raise TypeError(f'config must be a dict or a PEFT LoraConfig, got {type(config).__name__}')
    return {k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in config.items()}


class Client:
    """One connection to `omni-worker serve` (not thread-safe: one Client per thread or process).

    return_type: 'auto' (torch when it imports, else numpy, else omni_worker.Tensor), 'torch',
    'numpy' or 'tensor'. A full rollout queue (429) is retried after its Retry-After, up to
    `max_retries` times.
    """

    def __init__(self, url='http://127.0.0.1:8000', token=None, timeout=None, return_type='auto', max_retries=20):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ('http', 'https') or not parsed.hostname:
            raise ValueError(f'url must be http(s)://host:port, got {url!r}')
        self._scheme, self._host, self._port = parsed.scheme, parsed.hostname, parsed.port
        self._base = parsed.path.rstrip('/')
        self._token, self._timeout, self._max_retries = token, timeout, max_retries
        self.return_type = default_return_type() if return_type == 'auto' else return_type
        self._conn = None

    # --- transport ---------------------------------------------------------------------------
    def _connection(self):
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._scheme == 'https' else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, method, path, query=None, body=None, content_type=None, length=None):
        """(status, headers, body bytes); raises OmniWorkerError on 4xx/5xx."""
        url = self._base + path + ('?' + urllib.parse.urlencode(query, doseq=True) if query else '')
        headers = {}
        if self._token:
            headers['Authorization'] = f'Bearer {self._token}'
        if content_type:
            headers['Content-Type'] = content_type
        if length is not None:
            headers['Content-Length'] = str(length)
        for attempt in range(self._max_retries + 1):
            chunks = body() if callable(body) else body  # a generator is rebuilt for each attempt
            conn = self._connection()
            try:
                conn.request(method, url, body=chunks, headers=headers)
                resp = conn.getresponse()
                data = _read_body(resp)
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
                continue  # a kept-alive connection the server closed: once more on a new one
            if resp.status == 429 and attempt < self._max_retries:
                time.sleep(float(resp.getheader('Retry-After', '1')))
                continue
            if resp.status >= 400:
                try:
                    err = json.loads(data)['error']
                except (ValueError, KeyError, TypeError):
                    err = {'message': data.decode('utf-8', 'replace')}
                if isinstance(err, str):
                    err = {'message': err}
                raise OmniWorkerError(resp.status, err.get('message'), err.get('field'), err.get('request'))
            return resp.status, resp, data
        raise AssertionError('unreachable')

    def _json(self, method, path, payload=None, query=None):
        body = None if payload is None else json.dumps(payload).encode('utf-8')
        _, resp, data = self._send(method, path, query, body, 'application/json' if body is not None else None)
        return json.loads(data) if data else None

    def _tensors(self, path, tensors, metadata=None, query=None):
        """POSTs a safetensors body streamed from the tensors' own buffers (never joined)."""
        head, chunks, total = safetensors.plan(tensors, metadata)
        _, resp, data = self._send('POST', path, query, lambda: iter([head, *chunks]), 'application/octet-stream', total)
        return resp, data

    # --- rollouts ----------------------------------------------------------------------------
    def generate(self, requests, return_type=None):
        """A rollout for a list of requests (dicts with the worker's request options, plugin keys
        included: sde, capture, lora, ...). Concurrent callers share batches on the server and
        each gets exactly the samples it would get alone."""
        if isinstance(requests, dict):
            requests = [requests]
        body = [_request_dict(r, i) for i, r in enumerate(requests)]
        _, _, data = self._send('POST', '/v1/rollouts', None, json.dumps(body).encode('utf-8'), 'application/json')
        return Rollout.from_safetensors(data, return_type or self.return_type)

    def images(self, prompt, n=1, size=None, seed=None, **options):
        """PNG bytes of n images (OpenAI's images API route)."""
        import base64
        payload = {'prompt': prompt, 'n': n, **options}
        if size:
            payload['size'] = size
        if seed is not None:
            payload['seed'] = seed
        return [base64.b64decode(d['b64_json']) for d in self._json('POST', '/v1/images/generations', payload)['data']]

    # --- sleep -------------------------------------------------------------------------------
    def sleep(self, level=1, mode='wait'):
        return self._json('POST', '/sleep', query={'level': level, 'mode': mode})

    def wake_up(self, tags=None):
        return self._json('POST', '/wake_up', query={'tags': list(tags)} if tags else None)

    def is_sleeping(self):
        return self._json('GET', '/is_sleeping')['is_sleeping']

    # --- weights -----------------------------------------------------------------------------
    def update_weights(self, state_dict, component='transformer', bucket_bytes=None):
        """Sends a state dict (torch tensors of any float dtype, bf16 and fp16 included; numpy
        arrays; Tensor). With `bucket_bytes`, in buckets of at most that many bytes, staged and
        committed together by finish_weight_update (aborted if one is refused)."""
        tensors = {name: as_tensor(v, name) for name, v in state_dict.items()}
        query = {'component': component}
        if not bucket_bytes:
            resp, data = self._tensors('/update_weights', tensors, query=query)
            return json.loads(data)
        buckets, current, size = [], {}, 0
        for name, t in tensors.items():
            if current and size + t.nbytes > bucket_bytes:
                buckets.append(current)
                current, size = {}, 0
            current[name] = t
            size += t.nbytes
        if current:
            buckets.append(current)
        try:
            for b in buckets:
                self._tensors('/update_weights', b, query={**query, 'bucket': 'true'})
        except BaseException:
            self.abort_weight_update()
            raise
        return self.finish_weight_update()

    def update_weights_from_path(self, path, component='transformer', bucket=False):
        """A .safetensors file on the server's host (e.g. written to /dev/shm), read in place."""
        return self._json('POST', '/update_weights_from_path', {'path': str(path), 'component': component, 'bucket': bucket})

    def finish_weight_update(self):
        return self._json('POST', '/finish_weight_update')

    def abort_weight_update(self):
        return self._json('POST', '/abort_weight_update')

    # --- LoRA --------------------------------------------------------------------------------
    def load_lora_adapter(self, name, state_dict=None, config=None, path=None, pinned=False, replace=False):
        """An adapter from memory (a PEFT state dict, keys 'base_model.model.<module>.lora_A.weight',
        and its LoraConfig or config dict) or from a folder under the lora plugin's roots."""
        if path is not None:
            return self._json('POST', '/v1/load_lora_adapter', {'lora_name': name, 'lora_path': str(path), 'pinned': pinned, 'replace': replace})
        if state_dict is None or config is None:
            raise TypeError('load_lora_adapter needs state_dict and config, or path')
        tensors = {k: as_tensor(v, k) for k, v in state_dict.items()}
        query = {'lora_name': name, 'pinned': str(pinned).lower(), 'replace': str(replace).lower()}
        _, data = self._tensors('/v1/load_lora_adapter', tensors, {'adapter_config': json.dumps(_peft_config(config))}, query)
        return json.loads(data)

    def unload_lora_adapter(self, name):
        return self._json('POST', '/v1/unload_lora_adapter', {'lora_name': name})

    def list_lora_adapters(self):
        return self._json('GET', '/v1/lora_adapters')

    # --- anything else -----------------------------------------------------------------------
    def collective_rpc(self, method, args=(), return_type=None):
        """Calls a worker method by name (plugins' and extension classes' too); one result per
        worker. Tensors in args and results travel as safetensors."""
        tensors = {}
        payload = {'method': method, 'args': _detach(list(args), tensors)}
        if tensors:
            resp, data = self._tensors('/collective_rpc', tensors, {'rpc': json.dumps(payload)})
        else:
            _, resp, data = self._send('POST', '/collective_rpc', None, json.dumps(payload).encode('utf-8'), 'application/json')
        if (resp.getheader('Content-Type') or '').startswith('application/octet-stream'):
            metadata, out = safetensors.parse(data)
            return _attach(json.loads(metadata['results']), out, return_type or self.return_type)
        return json.loads(data)['results']

    def health(self):
        return self._json('GET', '/health')

    def metrics(self):
        _, _, data = self._send('GET', '/metrics')
        return data.decode('utf-8')
