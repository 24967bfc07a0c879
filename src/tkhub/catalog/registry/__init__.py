"""Registry sync: the catalog discovers Jupyter images in OCI registries.

The parts, each one job, data flowing one way:

- ``auth``: anonymous, basic and bearer-token challenge flows (distribution spec);
- ``client``: the distribution API over one ``aiohttp`` pool with bounded
  concurrency, retries and config labels cached by digest;
- ``labels``: image labels -> ``ImageCreate`` (or a reason to skip);
- ``policy``: which tags of a repository become entries;
- ``discover``: concurrent, incremental discovery of one registry -> ``Discovery``;
- ``apply``: writes a ``Discovery`` through the store functions and reports;
- ``service``: ``install(app, settings)`` adds the sync routes and the periodic sync.
"""
