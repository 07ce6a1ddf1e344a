"""The TenantQuota operator: reconciles TenantQuota resources into the gateways' live quota map."""

__version__ = "0.1.0"
