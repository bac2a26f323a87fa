"""The storefront (/web): server-rendered pages over the same service functions as
/client/v1, in English and Russian."""
