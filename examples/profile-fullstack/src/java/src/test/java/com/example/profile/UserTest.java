package com.example.profile;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.LocalDate;
import org.junit.jupiter.api.Test;

class UserTest {
    @Test
    void keepsItsFields() {
        User user = new User(1, "ada", "ada@example.com", "Ada Lovelace", LocalDate.of(2021, 3, 14));
        assertEquals("ada", user.username());
        assertEquals(LocalDate.of(2021, 3, 14), user.joinDate());
    }
}
