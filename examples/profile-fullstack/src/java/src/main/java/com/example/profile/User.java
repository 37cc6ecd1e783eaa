package com.example.profile;

import java.time.LocalDate;

/** A user as the core library knows it. */
public record User(long id, String username, String email, String fullName, LocalDate joinDate) {}
