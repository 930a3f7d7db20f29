// Plugin versions for every module. AGP 8.7 needs Gradle 8.9 or later, and Kotlin 2.1.0 is
// tested with Gradle up to 8.10, hence the wrapper's 8.10.2.
plugins {
    id("com.android.application") version "8.7.3" apply false
    id("org.jetbrains.kotlin.android") version "2.1.0" apply false
    id("org.jetbrains.kotlin.jvm") version "2.1.0" apply false
}
