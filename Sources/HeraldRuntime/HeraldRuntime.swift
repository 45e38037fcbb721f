public enum HeraldRuntimeModule {}
