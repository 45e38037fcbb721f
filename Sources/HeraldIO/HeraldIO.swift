public enum HeraldIOModule {}
