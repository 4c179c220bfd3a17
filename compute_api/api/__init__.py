"""The WSGI API layer: router, controllers, faults and microversions."""
