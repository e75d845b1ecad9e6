"""The payment gateway port and its adapters (``sandbox``, ``youcanpay``)."""
