//! weft-server: the stateless HTTP executor (Kestra-shaped API, webhooks, dispatch, tick).
