"""What starts bakes without anyone clicking, beyond each layer's own input sensor and nightly
schedule (:mod:`databaker.layers.automation`): new AddressBase drops, which rebake every
layer."""
